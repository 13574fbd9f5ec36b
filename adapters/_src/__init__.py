"""The private modules of ``adapters``.

Imported before any of them, so first make sure that ``specs`` and ``interop`` are
fm-adapters' own and not a folder of that name in the working directory (`shadowing`).
"""

from .shadowing import check_siblings

check_siblings()
