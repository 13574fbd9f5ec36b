"""The runtime table: torch eager against ``runtime="jax"``, ``"onnxruntime"`` and ``"auto"``
for every 2-D registry architecture (``_runtimes_cases.py``) at batch 1 and 16, 224 px.

``python -m benchmarks --only runtimes [--quick] [--save]``. Each architecture runs in a
process of its own (``python -m benchmarks.runtimes --case KEY``), with ``FM_ADAPTERS_CACHE``
in a fresh temporary directory, so every build through the public API (``adapters.build(spec,
runtime=...)``, random weights) is a real first build, and the memory of one large model is
given back before the next. In that process the four adapters are timed on the same random
float32 input, interleaved (`benchmarks._timing.interleaved`), after one untimed call each
(JAX compiles at a new batch). ``"auto"`` is built as a program builds it, so its choice is
the one it measured at ``build``'s batch (16, its default), at batch 1 too.

Every architecture gets a time cap (`CAP_S`, or ``$FM_BENCH_RUNTIMES_CAP_S`` seconds) for its
builds and both batches: a batch whose rounds would not fit in what is left is skipped, and a
process still running at the cap is ended; either way its rows say "skipped for time". A
runtime that refuses a model (its build or a call raises) gets a row with the error's first
line; a process that dies gets rows saying how; an architecture that would not fit in the
memory available (`short_of_memory`) gets rows saying so instead of a process. ``--quick``: batch 1, the architectures up to
``QUICK_MAX_PARAMS_M`` million parameters. ``$FM_BENCH_RUNTIMES_CASES`` (comma-separated
case keys) runs only those cases.

Rows (`benchmarks._timing.ratio_row`: ours = the runtime, baseline = torch eager; ratio below
1 is faster) are yielded as measured and written after each one to ``runtimes.json`` and
``runtimes.md`` in the results directory, with the CPU model and the load average per row.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks import _results
from benchmarks._runtimes_cases import CASES, QUICK_MAX_PARAMS_M, Case, case
from benchmarks._runtimes_table import RUNTIMES, header, write
from benchmarks._timing import interleaved, load_average, ratio_row

BASELINE = "torch"
#: seconds each architecture may take (builds and both batches), quick and full
CAP_S = {True: 900.0, False: 2400.0}
CAP_ENV = "FM_BENCH_RUNTIMES_CAP_S"
#: comma-separated case keys (`CASES`) to run, e.g. the four models of issue 24 on a quiet
#: spell of a shared machine; unset: all of them (the small ones with ``--quick``)
CASES_ENV = "FM_BENCH_RUNTIMES_CASES"
#: interleaved rounds per batch (after one untimed call each), quick and full; at least
#: `MIN_ROUNDS` or the batch is skipped for time
REPEATS = {True: 3, False: 5}
MIN_ROUNDS = 2
#: a process still running this long after its cap is ended (its own check comes first)
GRACE_S = 60.0
#: float32 copies of the weights one architecture's process may hold at once (the torch
#: module behind each of the four builds, the ONNX export, the ORT session), and the GiB the
#: libraries take: an architecture that would not fit in the memory available is skipped, not
#: left to the kernel's OOM killer (which may pick another process of a shared machine)
WEIGHT_COPIES = 6
LIBRARIES_GIB = 2.0
ROOT = Path(__file__).resolve().parents[1]
ROW_PREFIX = "ROW "


def run(quick: bool = True, out: Path | None = None) -> Iterator[dict[str, Any]]:
    """The suite: every case of `CASES` (the small ones with ``quick``), a process each."""
    out = Path(out) if out is not None else ROOT / "benchmarks" / "results" / "local"
    cap = float(os.environ.get(CAP_ENV) or CAP_S[quick])
    cases = [c for c in CASES if not quick or c.params_m <= QUICK_MAX_PARAMS_M]
    if os.environ.get(CASES_ENV):
        cases = [case(key.strip()) for key in os.environ[CASES_ENV].split(",") if key.strip()]
    batches = (1,) if quick else (1, 16)
    meta = header(quick, cap, REPEATS[quick])
    if os.environ.get(CASES_ENV):
        meta["subset"] = [c.key for c in cases]
    rows: list[dict[str, Any]] = []
    for c in cases:
        print(f"-- {c.label} (batch {', '.join(map(str, batches))})", flush=True)
        for row in _case(c, batches, REPEATS[quick], cap):
            rows.append(row)
            write(out, meta, rows)
            yield row


def _case(c: Case, batches: Sequence[int], repeats: int, cap: float) -> Iterator[dict[str, Any]]:
    """The rows of ``c``: from its own process, or skipped when this machine lacks the memory."""
    short = short_of_memory(c)
    if short is None:
        yield from case_in_process(c, batches, repeats, cap)
        return
    for batch in batches:
        for name in RUNTIMES:
            yield untimed_row(c, batch, name, short)


def short_of_memory(c: Case, available_gib: float | None = None) -> str | None:
    """Why ``c`` is not run here (None: it fits): `WEIGHT_COPIES` float32 copies of its weights
    plus `LIBRARIES_GIB` against ``MemAvailable`` (``/proc/meminfo``; unknown: it runs)."""
    need = c.params_m * 4e6 * WEIGHT_COPIES / 2**30 + LIBRARIES_GIB
    if available_gib is None:
        available_gib = _available_gib()
    if available_gib is None or need <= available_gib:
        return None
    return (
        f"skipped for memory: about {need:.0f} GiB needed ({WEIGHT_COPIES} float32 copies of "
        f"{c.params_m:.0f} M weights, and the libraries), {available_gib:.0f} GiB available"
    )


def _available_gib() -> float | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20  # KiB
    return None


def case_in_process(
    c: Case, batches: Sequence[int], repeats: int, cap_s: float
) -> Iterator[dict[str, Any]]:
    """`case_rows` of ``c`` in a process of its own with a fresh cache, ended at ``cap_s``
    (plus `GRACE_S`); the rows it did not give say why (time, or how the process ended)."""
    got: set[tuple[int, str]] = set()
    with tempfile.TemporaryDirectory(prefix="fm-runtimes-") as tmp:
        argv = [sys.executable, "-m", "benchmarks.runtimes", "--case", c.key, "--tmp", tmp,
                "--repeats", str(repeats), "--cap-s", str(cap_s),
                "--batches", *map(str, batches)]  # fmt: skip
        env = {**os.environ, "FM_ADAPTERS_CACHE": str(Path(tmp) / "cache")}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(":")
        log = Path(tmp) / "stderr.log"
        with log.open("w") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True,
                                    cwd=ROOT, env=env, start_new_session=True)  # fmt: skip
            lines: queue.Queue[str | None] = queue.Queue()
            pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
            pump.start()
            deadline = time.monotonic() + cap_s + GRACE_S
            why = None
            while why is None:
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    os.killpg(proc.pid, signal.SIGKILL)
                    why = (
                        f"skipped for time: still running at the architecture's cap of {cap_s:g} s"
                    )
                    break
                if line is None:
                    break
                if line.startswith(ROW_PREFIX):
                    row = json.loads(line[len(ROW_PREFIX) :])
                    got.add((row["batch"], row["runtime"]))
                    yield row
            rc = proc.wait()
            pump.join(timeout=10)  # the pipe ends with the process group
            proc.stdout.close()
        if why is None and rc != 0:
            tail = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
            why = f"failed: the case's process ended with status {rc}: {(tail or [''])[-1][:300]}"
    for batch in batches:
        for name in RUNTIMES:
            if (batch, name) not in got:
                yield untimed_row(c, batch, name, why or "failed: no row came back")


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def case_rows(
    c: Case, batches: Sequence[int], *, repeats: int, deadline: float, tmp: Path
) -> Iterator[dict[str, Any]]:
    """The rows of one architecture, in this process: build torch and each of `RUNTIMES`
    through ``adapters.build`` (a refusal is recorded, not raised), then per batch one untimed
    call each and ``repeats`` interleaved rounds; ``deadline`` (``time.monotonic``) caps it
    all."""
    import torch

    import adapters

    spec = c.make(tmp)
    example = torch.zeros(1, c.channels, c.size, c.size)
    built: dict[str, Any] = {}
    why: dict[str, str] = {}
    build_s: dict[str, float] = {}
    for name in (BASELINE, *RUNTIMES):
        if time.monotonic() > deadline:
            why[name] = "skipped for time: the architecture's cap was spent on its builds"
            continue
        t0 = time.perf_counter()
        try:
            built[name] = adapters.build(spec, runtime=name, example_input=example)
        except Exception as err:  # a refusal is a result of the table, not its end
            why[name] = f"refused: {type(err).__name__}: {first_line(err)}"
        build_s[name] = round(time.perf_counter() - t0, 2)
    extra = _case_fields(c, built, build_s)
    for batch in batches:
        for row in _batch_rows(c, batch, built, why, extra, repeats, deadline):
            # this process's peak so far: what the architecture needs (ru_maxrss is in KiB)
            row["peak_rss_gib"] = round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2
            )
            yield row


def _batch_rows(
    c: Case,
    batch: int,
    built: dict[str, Any],
    why: dict[str, str],
    extra: dict[str, Any],
    repeats: int,
    deadline: float,
) -> Iterator[dict[str, Any]]:
    import torch

    x = torch.randn(batch, c.channels, c.size, c.size, generator=torch.Generator().manual_seed(0))
    fns, failed, per_round = {}, dict(why), 0.0
    for name, adapter in built.items():  # the untimed call: compiles, and tells the cost
        fn = _thunk(adapter, x)
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as err:  # a runtime that cannot run this batch: its row says so
            failed[name] = (
                f"failed: a call at batch {batch} raised {type(err).__name__}: {first_line(err)}"
            )
            continue
        per_round += time.perf_counter() - t0
        fns[name] = fn
    rounds = min(repeats, int((deadline - time.monotonic()) // max(per_round, 1e-9)))
    if BASELINE not in fns or rounds < MIN_ROUNDS:
        note = failed.get(BASELINE, "") if BASELINE not in fns else (
            f"skipped for time: a round takes {per_round:.0f} s, "
            f"{max(0.0, deadline - time.monotonic()):.0f} s of the cap left"
        )  # fmt: skip
        for name in RUNTIMES:
            yield untimed_row(c, batch, name, failed.get(name) or note, extra)
        return
    timings = interleaved(fns, repeats=rounds, warmup=0)
    for name in RUNTIMES:
        if name not in timings:
            yield untimed_row(c, batch, name, failed[name], extra, timings[BASELINE]["median_s"])
            continue
        row = ratio_row(f"{c.label}, batch {batch}, {name}", timings, name, BASELINE,
                        **_row_fields(c, batch, name, extra), status="timed", rounds=rounds)  # fmt: skip
        row["speedup"] = row["baseline_s"] / row["ours_s"]
        yield row


def _thunk(adapter: Any, x: Any) -> Any:
    import jax
    import torch

    def call() -> None:
        with torch.inference_mode():
            jax.block_until_ready(adapter(x))  # JAX dispatches asynchronously

    return call


def _case_fields(c: Case, built: dict[str, Any], build_s: dict[str, float]) -> dict[str, Any]:
    """What every row of the architecture carries: its size, build times and auto's choice."""
    torch_adapter = built.get(BASELINE)
    params = (torch_adapter.params or {}).values() if torch_adapter is not None else ()
    fields: dict[str, Any] = {
        "params_m": round(sum(int(p.numel()) for p in params) / 1e6, 1) or c.params_m,
        "build_s": build_s,
    }
    auto = built.get("auto")
    record = (auto.info or {}).get("auto") if auto is not None else None
    if isinstance(record, dict):
        fields["chosen"] = record.get("runtime")
        fields["auto_speedup_at_build"] = record.get("speedup")
        fields["auto_timed_batch"] = record.get("batch_size")
        fields["auto_skipped"] = record.get("skipped") or {}
    return fields


def _row_fields(c: Case, batch: int, name: str, extra: dict[str, Any]) -> dict[str, Any]:
    fields = {
        "arch": c.key,
        "label": c.label,
        "entries": list(c.entries),
        "batch": batch,
        "size": c.size,
        "runtime": name,
        **extra,
        "loadavg": load_average(),
        "cpu": _results.cpu_model(),
    }
    if name != "auto":
        fields = {k: v for k, v in fields.items() if not k.startswith(("auto_", "chosen"))}
    return fields


def untimed_row(
    c: Case,
    batch: int,
    name: str,
    note: str,
    extra: dict[str, Any] | None = None,
    baseline_s: float = math.nan,
) -> dict[str, Any]:
    """A row without a time: the runtime refused, failed, or was skipped for time (``note``
    says which, with the error's first line)."""
    status = note.split(":", 1)[0]
    return {
        "case": f"{c.label}, batch {batch}, {name}",
        "ours": name,
        "baseline": BASELINE,
        "ours_s": math.nan,
        "baseline_s": baseline_s,
        "ratio": math.nan,
        "spread": math.nan,
        **_row_fields(c, batch, name, extra or {"params_m": c.params_m}),
        "status": status,
        "note": note,
    }


def first_line(err: BaseException) -> str:
    lines = [x for x in str(err).strip().splitlines() if x.strip()]
    return (lines[0] if lines else "")[:300]


def main(argv: Sequence[str] | None = None) -> int:
    """One architecture's process: its rows on stdout, one ``ROW <json>`` line each."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.runtimes")
    parser.add_argument("--case", required=True, help="a key of _runtimes_cases.CASES")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--repeats", type=int, default=REPEATS[False])
    parser.add_argument("--cap-s", type=float, default=CAP_S[False])
    parser.add_argument("--tmp", required=True, help="a directory the case may write into")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.cap_s
    rows = case_rows(case(args.case), args.batches, repeats=args.repeats, deadline=deadline,
                     tmp=Path(args.tmp))  # fmt: skip
    for row in rows:
        print(ROW_PREFIX + json.dumps(row, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
