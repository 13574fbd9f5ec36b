"""The application, ``python -m adapters``: it imports the library, never the reverse.

`cli` is the program; each command is a module of `commands`; `data` reads datasets, `ray`
is the optional Ray engine of ``embed``.
"""
