"""Fuzz tests (hypothesis): request files, Update payloads, CLI arguments, platform answers."""
