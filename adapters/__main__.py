"""``python -m adapters``: see `adapters._src.app.cli`."""

from adapters._src.app.cli import console as main

if __name__ == "__main__":
    raise SystemExit(main())
