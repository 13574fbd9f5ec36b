"""Shared test settings: no network, no writes outside temporary folders."""

import atexit
import os
import shutil
import tempfile

# Nothing in the test suite may reach a hub: fail fast instead of hanging on a download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
# Under pytest-xdist (`-n N`) each worker gets its share of the cores: N workers each running
# torch's and XLA's pools of a thread per core oversubscribe the machine. Subprocesses inherit
# the same counts, so a result compared across processes is computed alike on both sides.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
if _WORKERS > 1:
    _threads = max(1, (os.cpu_count() or 1) // _WORKERS)
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(_threads))
    if _threads == 1:
        os.environ["XLA_FLAGS"] += " --xla_cpu_multi_thread_eigen=false"
# The command line's default runtime is "auto", which exports, lowers and times every runtime on
# a backbone's first build: CLI tests pin torch unless they test auto (they unset this).
os.environ.setdefault("FM_ADAPTERS_RUNTIME", "torch")
# The ONNX Runtime fast path caches exports; tests must not fill the user's ~/.cache.
_cache = tempfile.mkdtemp(prefix="fm-adapters-test-cache-")
atexit.register(shutil.rmtree, _cache, ignore_errors=True)
os.environ["FM_ADAPTERS_CACHE"] = _cache
