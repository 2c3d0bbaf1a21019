"""What `stripe-warehouse sync --all` prints: a line per project as it finishes, then the
cycle's total with its split (syncs, dbt build, publish)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from orchestration.observer import RunObserver
from pipelines.batch import ProjectOutcome
from stripe_warehouse.progress import SyncProgress


class PhaseTimes(SyncProgress):
    """Seconds from the start of each reported phase (build, publish) to the next or close."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.seconds: dict[str, float] = {}
        self.started: dict[str, float] = {}
        self._current: str | None = None

    def phase(self, name: str) -> None:
        self._end()
        self._current = name
        self.started[name] = self._clock()

    def close(self, failed: bool = False) -> None:
        self._end()

    def _end(self) -> None:
        if self._current is not None:
            self.seconds[self._current] = self._clock() - self.started[self._current]
            self._current = None


@dataclass
class BatchReport:
    """Collects the outcomes of one batch and writes its lines to ``out``."""

    out: TextIO
    started: float
    clock: Callable[[], float] = time.monotonic
    outcomes: list[ProjectOutcome] = field(default_factory=list)
    times: PhaseTimes = field(default_factory=PhaseTimes)

    def __post_init__(self) -> None:
        self.observer = RunObserver(progress=self.times)

    def project(self, outcome: ProjectOutcome) -> None:
        """One project finished: its line, now."""
        self.outcomes.append(outcome)
        print(outcome.line(), file=self.out, flush=True)

    def split(self) -> dict[str, float]:
        """Seconds of the cycle: syncs (until the build started), build, publish, total."""
        self.times.close()
        total = self.clock() - self.started
        build = self.times.seconds.get("build", 0.0)
        publish = self.times.seconds.get("publish", 0.0)
        build_start = self.times.started.get("build")
        syncs = (build_start - self.started) if build_start is not None else total
        return {"syncs": syncs, "build": build, "publish": publish, "total": total}

    def total(self) -> str:
        """The cycle's last line."""
        failed = [o.project_id for o in self.outcomes if not o.ok]
        rows = sum(o.rows for o in self.outcomes)
        split = self.split()
        done = f"{len(self.outcomes) - len(failed)} of {len(self.outcomes)} projects refreshed"
        failures = f", {len(failed)} failed ({', '.join(failed)})" if failed else ""
        return (f"cycle: {done}{failures}, {rows:,} rows in {split['total']:.1f} s "
                f"(syncs {split['syncs']:.1f} s, dbt build {split['build']:.1f} s, "
                f"publish {split['publish']:.1f} s)")
