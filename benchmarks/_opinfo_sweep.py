"""The sweep's worker: OpInfo samples run in a child process, each within a time budget.

A sample that hangs or kills its process (XLA aborts, a segfault in a torch kernel) must not
stop the sweep: the parent hands one entry x dtype at a time to a worker process, waits for
each sample's verdict at most ``timeout`` seconds, and on a timeout or a dead worker records
the sample as ``timeout`` or ``crash`` and starts a fresh worker for the next entry.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import time
import warnings
from collections.abc import Iterator
from typing import Any

from benchmarks import _opinfo

#: a worker starts over after this many entries, so that no leak grows for the whole sweep
RECYCLE = 100


def _serve(conn: Any, n: int, only_samples: dict[tuple[str, str], tuple[int, ...]]) -> None:
    """Worker loop: receive ``(key, dtype)``, send ``("count", k)``, k samples, ``("done",)``."""
    import jax

    warnings.simplefilter("ignore")
    entries = _opinfo.entries()
    conn.send(("ready",))
    while (job := conn.recv()) is not None:
        key, dtype = job
        op = entries[key]
        try:
            picked = _opinfo.samples(op, _opinfo.DTYPES[dtype], n)
        except Exception as err:  # torch's sample generator itself failed
            conn.send(("error", f"sample_inputs: {_opinfo.first_line(err)}"))
            continue
        conn.send(("count", len(picked)))
        for result in _opinfo.run_samples(op, picked, dtype, only_samples.get((key, dtype), ())):
            conn.send(("sample", result))
        conn.send(("done",))
        jax.clear_caches()  # every lowered function is new: nothing in the cache is reused
        gc.collect()


class Worker:
    """A child process running samples; restarted after a timeout, a death or ``RECYCLE`` jobs."""

    def __init__(
        self, n: int, timeout: float, only_samples: dict[tuple[str, str], tuple[int, ...]]
    ) -> None:
        self.n, self.timeout, self.only_samples = n, timeout, only_samples
        self.proc: Any = None
        self.jobs = 0

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self.n, self.only_samples))
        self.proc.start()
        child.close()
        self._recv(600.0)  # importing torch, jax and op_db under load
        self.jobs = 0

    def close(self, kill: bool = False) -> None:
        """Stop the worker: ask it to finish, or ``kill`` it (a sample it runs is abandoned)."""
        if self.proc is not None:
            if self.proc.is_alive() and not kill:
                try:
                    self.conn.send(None)
                    self.proc.join(10)
                except (BrokenPipeError, OSError):
                    pass
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join()
            self.proc = None

    def _recv(self, timeout: float) -> tuple:
        if not self.conn.poll(timeout):
            raise TimeoutError
        return self.conn.recv()

    def run(self, key: str, dtype: str) -> Iterator[dict[str, Any]]:
        """Each sample's verdict (with its ``seconds``) for entry ``key`` in ``dtype``."""
        if self.proc is None or self.jobs >= RECYCLE:
            self.close()
            self._start()
        self.jobs += 1
        self.conn.send((key, dtype))
        try:
            try:
                head = self._recv(self.timeout)
            except TimeoutError:
                self.close(kill=True)
                why = f"torch's sample_inputs ran past {self.timeout:g} s"
                yield {"verdict": "timeout", "reason": why, "seconds": self.timeout}
                return
            if head[0] == "error":
                yield {"verdict": "skipped", "reason": head[1], "seconds": 0.0}
                return
            for i in range(head[1]):
                start = time.perf_counter()
                try:
                    _, result = self._recv(self.timeout)
                except TimeoutError:
                    self.close(kill=True)
                    why = f"sample {i} ran past {self.timeout:g} s"
                    yield {"verdict": "timeout", "reason": why, "seconds": self.timeout}
                    return
                yield {**result, "seconds": round(time.perf_counter() - start, 3)}
            self._recv(self.timeout)
        except (EOFError, ConnectionError, TimeoutError) as err:
            if self.proc is not None:
                self.proc.join(5)  # reap it, so that its exit code (a signal: < 0) is known
            code = self.proc.exitcode if self.proc is not None else None
            self.close(kill=True)
            why = f"the worker process died (exit code {code})" if code else repr(err)
            yield {"verdict": "crash", "reason": why, "seconds": 0.0}
