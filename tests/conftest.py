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
# The command line's default runtime is "auto", which exports, lowers and times every runtime on
# a backbone's first build: CLI tests pin torch unless they test auto (they unset this).
os.environ.setdefault("FM_ADAPTERS_RUNTIME", "torch")
# The ONNX Runtime fast path caches exports; tests must not fill the user's ~/.cache.
_cache = tempfile.mkdtemp(prefix="fm-adapters-test-cache-")
atexit.register(shutil.rmtree, _cache, ignore_errors=True)
os.environ["FM_ADAPTERS_CACHE"] = _cache
