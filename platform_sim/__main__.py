"""``python -m platform_sim --port 8700 [--state-file F]``."""

from platform_sim.server import main

if __name__ == "__main__":
    raise SystemExit(main())
