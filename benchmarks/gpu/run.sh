#!/usr/bin/env bash
# The GPU section on a lent machine, in one command (see README.md beside this):
#   bash benchmarks/gpu/run.sh            # all parts, results in $OUT
# Installs the carried wheels in .whl/ (if any) into /tmp/site, then runs every part, each in
# its own process, within the 290 s budget of benchmarks/gpu/_runner.py.
set -u
cd "$(dirname "$0")/../.." || exit 2
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 3
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export FM_ADAPTERS_CACHE="${FM_ADAPTERS_CACHE:-/tmp/fm-adapters-cache}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader 2>/dev/null || true
exec python3 -m benchmarks.gpu --out "${OUT:-benchmarks/results/gpu}" "$@"
