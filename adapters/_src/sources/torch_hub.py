"""`TorchHubSpec`: ``torch.hub.load``, as eva's ``TorchHubModel``.

``hub_source: local`` in YAML (``source="local"`` on the record; ``source:`` is the YAML's record
tag) loads a local hub directory (a folder with ``hubconf.py``) and works offline.
``out_indices`` returns ``get_intermediate_layers(x, out_indices, reshape=True, norm=norm)``
as a list of ``(B, C, H, W)`` maps.
"""

from __future__ import annotations

import os

import torch

import specs

from ..adapter import Adapter
from ..errors import ArgumentError, BuildError
from ..imports import thaw
from ..offline import offline_reason
from . import _torch
from ._torch import finish, input_shape_of, load_checkpoint, out_indices_call, require_module


def _github_cached(repo: str) -> bool:
    owner_name = repo.split(":")[0].replace("/", "_")
    hub = torch.hub.get_dir()
    return os.path.isdir(hub) and any(d.startswith(owner_name + "_") for d in os.listdir(hub))


def _repo(spec: specs.TorchHubSpec) -> str:
    """What ``torch.hub.load`` gets as ``repo_or_dir``: a local hub directory (checked to have a
    ``hubconf.py``), or a GitHub repository (checked to be cached, or reachable).

    Raises:
        BuildError: no ``hubconf.py`` in the local directory; or an uncached GitHub repository
            while offline.
    """
    if spec.source == "local":
        repo = os.path.expanduser(spec.repo_or_dir)
        if not os.path.isfile(os.path.join(repo, "hubconf.py")):
            raise BuildError(
                "repo_or_dir",
                f"local hub directory {spec.repo_or_dir!r} has no hubconf.py",
                fix="Point repo_or_dir at a folder containing hubconf.py, or set hub_source: "
                "github (source='github' in Python) for a GitHub repository",
            )
        return repo
    repo = spec.repo_or_dir
    offline = None if _github_cached(repo) else offline_reason("github.com")
    if offline is not None:
        raise BuildError(
            "repo_or_dir",
            f"torch.hub repository {repo!r} (GitHub) is not in the local hub cache "
            f"({torch.hub.get_dir()}) and this process is offline ({offline})",
            fix=f"Clone it (git clone https://github.com/{repo.split(':')[0]}) and set "
            "hub_source: local (source='local' in Python) with repo_or_dir: the clone's folder",
        )
    return repo


def build_torch_hub(spec: specs.TorchHubSpec, *, device: str | None = None) -> Adapter:
    """``torch.hub.load(repo_or_dir, model_name, pretrained=..., **model_kwargs)`` on
    ``device``."""
    repo = _repo(spec)
    kwargs = thaw(spec.model_kwargs)
    try:
        module = torch.hub.load(
            repo,
            spec.model_name,
            source=spec.source,
            trust_repo=spec.trust_repo,
            pretrained=spec.pretrained,
            **kwargs,
        )
    except TypeError as err:
        raise ArgumentError(
            "model_kwargs", f"hub entrypoint {spec.model_name!r} rejected its arguments: {err}"
        ) from err
    except (RuntimeError, AttributeError) as err:
        if "Cannot find callable" in str(err) or "hubconf" in str(err):
            available = _entrypoints(repo) if spec.source == "local" else []
            raise BuildError(
                "model_name",
                f"{spec.repo_or_dir!r} has no hub entrypoint {spec.model_name!r}",
                fix=f"Available: {', '.join(available)}" if available else None,
            ) from err
        raise BuildError("repo_or_dir", f"torch.hub.load failed: {err}") from err
    except Exception as err:
        raise BuildError("repo_or_dir", f"torch.hub.load failed: {err}") from err
    module = require_module(module, "model_name", f"hub entrypoint {spec.model_name!r}")
    load_checkpoint(module, spec)

    norm = spec.norm
    call = out_indices_call(
        module,
        spec.out_indices,
        method="get_intermediate_layers",
        what=f"hub model {spec.model_name!r}",
        returns="intermediate layers",
        fix="Remove out_indices, or load a model that defines get_intermediate_layers "
        "(DINO / DINOv2 / timm ViTs)",
        run=lambda m, x, n: list(m.get_intermediate_layers(x, n, reshape=True, norm=norm)),
    )
    return finish(
        module, spec, call=call, info={"input_shape": input_shape_of(module)}, device=device
    )


def _entrypoints(repo: str) -> list[str]:
    """Public callables of a local ``hubconf.py`` (``torch.hub.list`` is GitHub-only)."""
    import importlib.util

    try:
        spec = importlib.util.spec_from_file_location(
            "_fm_hubconf", os.path.join(repo, "hubconf.py")
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception:
        return []
    return sorted(
        name
        for name, value in vars(module).items()
        if callable(value)
        and not name.startswith("_")
        and getattr(value, "__module__", None) == module.__name__
    )


# the source's entry points, found by its tag (adapters/_src/sources/table.py)
build = build_torch_hub
check_device = _torch.check_device
REGISTRY_OVERRIDES = {"out_indices": _torch.out_indices_override}
