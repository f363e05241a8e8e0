"""A real HTTP server implementing Docket's platform protocol v1, with scenario knobs.

In-process::

    with PlatformSimulator(secrets={"facebook": "s3cret"}) as sim:
        sim.base_url("facebook")          # http://127.0.0.1:<port>/facebook
        sim.content_url("facebook", "451--impostor")

From the command line: ``python -m platform_sim --port 8700``.
"""

from platform_sim.scenarios import (
    PRESETS,
    ItemScenario,
    PageTexts,
    PlatformScenario,
    SimClock,
    markers_for,
    parse_slug,
)
from platform_sim.server import PlatformSimulator, main

__all__ = [
    "PRESETS",
    "ItemScenario",
    "PageTexts",
    "PlatformScenario",
    "PlatformSimulator",
    "SimClock",
    "main",
    "markers_for",
    "parse_slug",
]
