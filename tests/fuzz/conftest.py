"""The fuzz tests that need Temporal reuse the reliability fixtures (dev server, client,
simulator): the same definitions, instantiated for this package."""

from __future__ import annotations

from reliability.conftest import audit_dir, rel_client, rel_server, sim, sim_secret

__all__ = ["audit_dir", "rel_client", "rel_server", "sim", "sim_secret"]
