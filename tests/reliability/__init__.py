"""Reliability tests: crash/restart drill, platform faults, roles, secrets and signatures."""
