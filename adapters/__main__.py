"""``python -m adapters``: see `adapters._src.cli`."""

from adapters._src.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
