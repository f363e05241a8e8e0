"""``python -m platform_check`` (``./run platform-check``)."""

from platform_check.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
