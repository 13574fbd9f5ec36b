"""Runtimes: each a module (or package) with the same face, looked up by name in ``table.py``;
what two runtimes share lives in neutral modules here (``inputs``, ``outputs``, ``parity``,
``cache_key``, ``cache_entry``), never in one runtime for another to import."""
