"""Progress of a running job, for both engines of ``embed``: a tqdm bar when stderr is a
terminal, else a plain line on stderr every `PLAIN_PROGRESS_EVERY_S` seconds and once at the
end (CI logs, ``nohup``), where a bar would print nothing readable."""

from __future__ import annotations

import sys
import time

#: seconds between two plain progress lines when stderr is not a terminal
PLAIN_PROGRESS_EVERY_S = 10.0


class Progress:
    """One job's progress: ``embed: 640/1797 images, 52.1 img/s`` (and ``, 1/4 shards`` for a
    job written in shards).

    Args:
        total: what the job will process (``noun``).
        desc: the line's prefix and the bar's title.
        noun: what ``total`` counts (``images``, ``rows``).
        unit: the rate's unit (``img`` for ``img/s``).
        shards: the shard files the job will write, or None for a single output.
        enabled: False prints nothing (no bar, no line).
    """

    def __init__(
        self,
        total: int,
        *,
        desc: str = "embed",
        noun: str = "images",
        unit: str = "img",
        shards: int | None = None,
        enabled: bool = True,
    ) -> None:
        from tqdm.auto import tqdm

        self.total, self.desc, self.noun, self.unit = total, desc, noun, unit
        self.done, self.shards_done, self.shards = 0, 0, shards
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self.t0 = self.last = time.perf_counter()
        self.bar = tqdm(total=total, unit=unit, desc=desc, disable=not self.tty, leave=False)
        if shards is not None:
            self.bar.set_postfix_str(f"shards 0/{shards}")

    def update(self, n: int = 0, shards: int = 0) -> None:
        """Count ``n`` more processed and ``shards`` more written."""
        self.done += n
        self.shards_done += shards
        self.bar.update(n)
        if shards:
            self.bar.set_postfix_str(f"shards {self.shards_done}/{self.shards}")
        now = time.perf_counter()
        if self.enabled and not self.tty and now - self.last >= PLAIN_PROGRESS_EVERY_S:
            self.last = now
            self._line(now)

    def close(self, line: bool = True) -> None:
        """Close the bar; without a terminal, print the last plain line (unless not ``line``:
        after an error, which is the last word)."""
        self.bar.close()
        if line and self.enabled and not self.tty:
            self._line(time.perf_counter())

    def _line(self, now: float) -> None:
        rate = self.done / max(now - self.t0, 1e-9)
        shards = "" if self.shards is None else f", {self.shards_done}/{self.shards} shards"
        print(
            f"{self.desc}: {self.done}/{self.total} {self.noun}{shards}, {rate:.1f} {self.unit}/s",
            file=sys.stderr,
            flush=True,
        )
