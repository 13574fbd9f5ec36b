"""Ray for ``embed --engine ray``: imported (or the extra to install named), started or joined
quietly (Ray's own logs, bars and its deprecation warnings about its own fields stay out of
the user's way unless ``verbose``)."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

from ..errors import EmbedError

#: DataContext() assigns its own deprecated fields in __init__ (ray 2.60), warning about each;
#: they are Ray's, not ours, and say nothing about our use, so these three alone are filtered
RAY_OWN_DEPRECATIONS = (
    r"`use_push_based_shuffle` is deprecated",
    r"`use_polars` is deprecated",
    r"`use_arrow_tensor_v2` is deprecated",
)


def ray_module() -> Any:
    """The ``ray`` module, with ``ray.data``.

    Raises:
        EmbedError: Ray Data is not installed (naming the extra that installs it).
    """
    try:
        import ray
        import ray.data  # registers ray.data on the ray module
    except ImportError as err:
        raise EmbedError(
            "--engine ray: Ray Data is not installed; install the 'distributed' extra "
            "(pip install 'fm-adapters[distributed]', or pip install 'ray[data]')"
        ) from err
    return ray


def data_context() -> Any:
    """Ray Data's current context, created without Ray's warnings about its own fields."""
    ray = ray_module()
    with warnings.catch_warnings():
        for message in RAY_OWN_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
        return ray.data.DataContext.get_current()


def start_ray(address: str | None = None, *, verbose: bool = False) -> bool:
    """Start a local Ray (``address`` None) or join the cluster at ``address``, unless this
    process is already connected; returns whether this call connected (and should shut down).

    Ray logs at ERROR unless ``verbose`` (then INFO, with the workers' output forwarded).
    """
    ray = ray_module()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.INFO if verbose else logging.ERROR,
        "log_to_driver": verbose,
    }
    saved = os.environ.get("RAY_BACKEND_LOG_LEVEL")
    if not verbose and saved is None:
        # Ray's C++ core logs an ERROR line for every actor pool Ray Data starts ("constructor
        # arguments in the object store and max_restarts > 0", ray 2.60), about Ray's own
        # design; read once, when this process connects
        os.environ["RAY_BACKEND_LOG_LEVEL"] = "fatal"
    try:
        # "local": a new Ray here, even when 'ray start' left a cluster running on this machine
        ray.init(address=address or "local", **kwargs)
    except ConnectionError as err:
        raise EmbedError(
            f"--address: cannot join a Ray cluster at {address!r} ({err}); start one with "
            "'ray start --head' on the head node (Ray 2.60 clusters check a token: run with "
            "RAY_AUTH_MODE=token and the head's ~/.ray/auth_token), or drop --address for a "
            "local Ray"
        ) from err
    finally:
        if saved is None:
            os.environ.pop("RAY_BACKEND_LOG_LEVEL", None)
    return True


@contextlib.contextmanager
def quiet(verbose: bool) -> Iterator[Any]:
    """Ray Data without its progress bars and INFO logs (ours replace them), unless verbose;
    the previous settings come back afterwards."""
    ctx = data_context()
    saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "print_on_execution_start")}
    loggers = [logging.getLogger(name) for name in ("ray", "ray.data")]
    levels = [lg.level for lg in loggers]
    if not verbose:
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        for lg in loggers:
            lg.setLevel(logging.ERROR)
    try:
        yield ctx
    finally:
        for key, value in saved.items():
            setattr(ctx, key, value)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
