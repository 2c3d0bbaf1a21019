"""What a sync shows while it runs: its phases, a bar, rate and ETA on a terminal; lines if not.

A sync goes through five phases: ``extract`` (reading Stripe), ``normalize`` and ``load`` (dlt
into DuckDB), ``build`` (dbt) and ``publish`` (the readers' copy). Stripe does not say how many
objects a listing holds, so extraction expects as many objects as the project's previous sync
of the same kind read (:meth:`SyncProgress.expect`, from the Dagster instance's record of it)
and shows its rate and an ETA against that; a first sync shows objects and rate only. The
build knows its number of dbt nodes, so it shows a bar and an ETA.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

PHASES = ("extract", "normalize", "load", "build", "publish")
OBJECTS_PER_LINE = 1000  # plain mode: one line per thousand objects, not per page
STEPS_PER_LINE = 10  # plain mode: one line per ten dbt nodes


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class SyncProgress:
    """Receives a sync's events; the base class shows nothing (for scripts and Dagster)."""

    def phase(self, name: str) -> None:
        """A new phase starts (one of :data:`PHASES`); the previous one is done."""

    def expect(self, objects: int | None) -> None:
        """Objects the extraction is expected to read (the previous sync's), for its ETA."""

    def objects(self, counts: dict[str, int]) -> None:
        """Objects read from Stripe so far, per object type (extract phase)."""

    def steps(self, done: int, total: int) -> None:
        """dbt nodes finished out of ``total`` (build phase)."""

    def close(self, failed: bool = False) -> None:
        """The sync ended: finish the display (if it ``failed``, its error line says why)."""

    def __enter__(self) -> SyncProgress:
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        self.close(failed=exc_type is not None)


class PlainProgress(SyncProgress):
    """One line per event worth a line, each with the elapsed time: for logs and pipes."""

    def __init__(self, out: TextIO | None = None, clock=time.monotonic) -> None:
        self._out = out or sys.stderr
        self._clock = clock
        self._started = clock()
        self._phase: str | None = None
        self._phase_started = self._started
        self._objects = 0
        self._printed_objects = 0
        self._printed_steps = 0
        self._expected: int | None = None

    def _print(self, line: str) -> None:
        print(line, file=self._out, flush=True)

    def _end_phase(self) -> None:
        if self._phase is None:
            return
        took = self._clock() - self._phase_started
        detail = ""
        if self._phase == "extract":
            rate = self._objects / took if took > 0 else 0.0
            detail = f", {self._objects:,} objects, {rate:,.0f}/s"
        self._print(f"{self._phase} done in {took:.1f} s{detail}")
        self._phase = None

    def phase(self, name: str) -> None:
        self._end_phase()
        self._phase, self._phase_started = name, self._clock()
        position = PHASES.index(name) + 1 if name in PHASES else "?"
        elapsed = _duration(self._phase_started - self._started)
        self._print(f"[{position}/{len(PHASES)}] {name} (elapsed {elapsed})")

    def expect(self, objects: int | None) -> None:
        self._expected = objects or None

    def objects(self, counts: dict[str, int]) -> None:
        self._objects = sum(counts.values())
        if self._objects - self._printed_objects < OBJECTS_PER_LINE:
            return
        self._printed_objects = self._objects
        took = self._clock() - self._phase_started
        rate = self._objects / took if took > 0 else 0.0
        parts = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
        eta = extraction_eta(self._objects, self._expected, rate)
        expected = (f" of ~{self._expected:,}, ETA {_duration(eta)}"
                    if eta is not None and self._expected else "")
        self._print(f"  read {self._objects:,} objects{expected} ({parts}), {rate:,.0f}/s, "
                    f"elapsed {_duration(self._clock() - self._started)}")

    def steps(self, done: int, total: int) -> None:
        if done - self._printed_steps < STEPS_PER_LINE and done < total:
            return
        self._printed_steps = done
        took = self._clock() - self._phase_started
        eta = took / done * (total - done) if done else 0.0
        self._print(f"  built {done}/{total} dbt nodes, ETA {_duration(eta)}, "
                    f"elapsed {_duration(self._clock() - self._started)}")

    def close(self, failed: bool = False) -> None:
        if self._phase is not None and not failed:
            self._end_phase()
            self._print(f"finished in {_duration(self._clock() - self._started)}")


class TerminalProgress(SyncProgress):
    """A `rich` display on stderr: one row per phase with a bar, count, rate, elapsed and ETA."""

    def __init__(self, out: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._display = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=out or sys.stderr),
        )
        self._display.start()
        self._tasks: dict[str, int] = {}
        self._current: str | None = None
        self._expected: int | None = None

    def _finish_current(self) -> None:
        if self._current is None:
            return
        task = self._tasks[self._current]
        total = self._display.tasks[task].total or self._display.tasks[task].completed or 1
        self._display.update(task, total=total, completed=total)
        self._display.stop_task(task)
        self._current = None

    def phase(self, name: str) -> None:
        self._finish_current()
        self._tasks[name] = self._display.add_task(name, total=None, count="", rate="")
        self._current = name

    def expect(self, objects: int | None) -> None:
        self._expected = objects or None

    def objects(self, counts: dict[str, int]) -> None:
        if self._current is None:
            return
        task = self._tasks[self._current]
        total = sum(counts.values())
        elapsed = self._display.tasks[task].elapsed or 0.0
        rate = f"{total / elapsed:,.0f} objects/s" if elapsed > 0 else ""
        # A bar towards the previous sync's count gives rich's ETA; past it, keep it just ahead.
        expected = max(self._expected, total + 1) if self._expected else None
        count = f"{total:,} of ~{expected:,} objects" if expected else f"{total:,} objects"
        self._display.update(task, completed=total, total=expected, count=count, rate=rate)

    def steps(self, done: int, total: int) -> None:
        if self._current is None:
            return
        task = self._tasks[self._current]
        self._display.update(task, completed=done, total=total, count=f"{done}/{total} nodes")

    def close(self, failed: bool = False) -> None:
        if not failed:
            self._finish_current()
        self._display.stop()


def extraction_eta(done: int, expected: int | None, rate: float) -> float | None:
    """Seconds left to read ``expected`` objects at ``rate``; 0 once past it (the account grew
    since the previous sync: the listings end soon); None without an expectation or a rate."""
    if not expected or rate <= 0:
        return None
    return max(expected - done, 0) / rate


def progress_for(terminal: TextIO, plain: TextIO) -> SyncProgress:
    """A bar on ``terminal`` if it is one, else plain lines on ``plain`` (a pipe, a log, CI).

    The CLI passes stderr and stdout: the bar is a display, the lines are the command's output
    (a log of what it did, like the summary after them), and stderr keeps only warnings and
    errors, so that an interrupted sync's stderr is its one error line.
    """
    if terminal.isatty():
        return TerminalProgress(terminal)
    return PlainProgress(plain)
