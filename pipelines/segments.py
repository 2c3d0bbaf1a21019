"""A sync's rows loaded in several dlt load packages while the extraction goes on (issue 18).

dlt runs extract, normalize and load one after the other, and one dlt ``Pipeline`` must not
run two steps at once (its trace, schemas and state are the object's own). A backfill spent
a third of its time in normalize and load after its last request. Here the rows go through
the project's ``LANES`` pipelines (stripe_warehouse.purge.pipeline_names), each in a thread
of its own: one lane extracts the current *segment* of rows while another normalizes and
loads the one before. A segment ends after ``SEGMENT_ROWS`` rows, once another lane is free
to take the next one; the extraction never waits for a load (while every other lane is busy,
the current segment grows instead).

Loads happen in segment order, each in its own turn of the writer lock (webhooks and builds
get theirs in between), so the later row of an object always wins, as within one package
(merges on the primary key). A sync of at most ``SEGMENT_ROWS`` rows (a refresh, usually)
is one package through the project's first pipeline, as before. An interrupted sync leaves
packages in some lanes: the next sync discards them and reads its whole window again.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pipelines.source import RowsByTable, rows_source

SEGMENT_ROWS = 30_000  # rows per load package once another lane is free
LANES = 3  # pipelines per project: one extracting, one normalizing, one loading
SEGMENT_QUEUE_BATCHES = 32  # batches between the router and the extracting lane
_END = object()  # the segment's last batch was put
_POLL_SECONDS = 0.2


class _Aborted(Exception):
    """The sync failed elsewhere: this lane stops."""


@dataclass
class Segment:
    """One load package's rows, in the order of the sync."""

    number: int
    lane: int
    batches: queue.Queue = field(default_factory=lambda: queue.Queue(SEGMENT_QUEUE_BATCHES))
    final: bool = False  # set before its _END: the sync's last package


@dataclass
class Timings:
    """Wall seconds of each step summed over the segments, and how long the sync went on
    after its extraction ended (the part of normalize and load that did not overlap it)."""

    extract: float = 0.0
    normalize: float = 0.0
    load: float = 0.0
    after_extraction: float = 0.0
    segments: int = 0


class SegmentedLoad:
    """Route a sync's batches to its lanes and load them in order (see the module docstring).

    ``lane_pipeline(i)``: lane ``i``'s dlt pipeline, made ready (called once per lane, in
    its thread, when it gets its first segment). ``load_turn(pipeline, final)``: load the
    pipeline's normalized package in a turn of the writer lock; for the final segment, also
    record the sync in that turn.
    """

    def __init__(self, lane_pipeline: Callable[[int], Any], file_format: str,
                 load_turn: Callable[[Any, bool], Any],
                 phase: Callable[[str], None] = lambda name: None,
                 segment_rows: int | None = None, lanes: int | None = None) -> None:
        self._lane_pipeline = lane_pipeline
        self._file_format = file_format
        self._load_turn = load_turn
        self._phase = phase
        # the module's values when not given (read here: tests make them small)
        self._segment_rows = segment_rows or SEGMENT_ROWS
        lanes = lanes or LANES
        self._assigned: list[queue.Queue] = [queue.Queue() for _ in range(lanes)]
        self._busy = [False] * lanes
        self._state = threading.Condition()
        self._loaded_through = -1  # the last segment loaded
        self._error: BaseException | None = None
        self._abort = threading.Event()
        self._threads: list[threading.Thread] = []
        self._extraction_ended: float | None = None
        self.rows: Counter[str] = Counter()  # rows normalized per table
        self.timings = Timings()

    # The router (the sync's own thread) ---------------------------------------------------

    def run(self, batches: Iterator[RowsByTable]) -> None:
        """Route ``batches`` to the lanes until the extraction ends; the lanes go on loading
        (:meth:`wait` for them). Raises what a lane raised."""
        self._threads = [
            threading.Thread(target=self._lane, args=(index,), name=f"sync-lane-{index}")
            for index in range(len(self._assigned))
        ]
        for thread in self._threads:
            thread.start()
        started = time.monotonic()
        try:
            segment = self._open(0, lane=0)
            rows = 0
            for batch in batches:
                if rows >= self._segment_rows:
                    free = self._free_lane()
                    if free is not None:
                        self._put(segment, _END)
                        segment = self._open(segment.number + 1, lane=free)
                        rows = 0
                self._put(segment, batch)
                rows += sum(len(table_rows) for table_rows in batch.values())
            segment.final = True
            self._put(segment, _END)
        except BaseException:
            self._abort.set()
            self._stop_lanes()
            raise
        finally:
            self._extraction_ended = time.monotonic()
            self.timings.extract = self._extraction_ended - started
            close = getattr(batches, "close", None)
            if close is not None:  # stops the listings at once when a lane failed
                close()
        self._phase("normalize")

    def wait(self) -> None:
        """Wait for the lanes to load their segments; raise the first error of a lane."""
        self._stop_lanes()
        if self._extraction_ended is not None:
            self.timings.after_extraction = time.monotonic() - self._extraction_ended
        if self._error is not None:
            raise self._error

    def _stop_lanes(self) -> None:
        """Each lane finishes the segment it has (or stops, once aborted) and ends."""
        for assigned in self._assigned:
            assigned.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []

    def _open(self, number: int, lane: int) -> Segment:
        segment = Segment(number, lane)
        with self._state:
            self._busy[lane] = True
        self._assigned[lane].put(segment)
        self.timings.segments += 1
        return segment

    def _free_lane(self) -> int | None:
        with self._state:
            return next((i for i, busy in enumerate(self._busy) if not busy), None)

    def _put(self, segment: Segment, item: Any) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                segment.batches.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue

    # The lanes --------------------------------------------------------------------------

    def _lane(self, index: int) -> None:
        pipeline = None
        while (segment := self._assigned[index].get()) is not None:
            try:
                if self._abort.is_set():
                    raise _Aborted
                if pipeline is None:
                    pipeline = self._lane_pipeline(index)
                self._process(pipeline, segment)
            except BaseException as error:  # noqa: BLE001 - handed to the router and wait()
                with self._state:
                    if self._error is None and not isinstance(error, _Aborted):
                        self._error = error
                    self._state.notify_all()
                self._abort.set()
                return
            with self._state:
                self._busy[index] = False

    def _process(self, pipeline: Any, segment: Segment) -> None:
        pipeline.extract(rows_source(self._batches_of(segment),
                                     arrow=self._file_format == "parquet"),
                         loader_file_format=self._file_format)
        extracted = time.monotonic()
        normalized = pipeline.normalize()
        normalize_seconds = time.monotonic() - extracted
        if normalized is not None:
            with self._state:
                self.rows.update(normalized.row_counts)
        self._wait_turn(segment.number)
        loading = time.monotonic()
        if segment.final:
            self._phase("load")
        self._load_turn(pipeline, segment.final)
        with self._state:
            self._loaded_through = segment.number
            self._state.notify_all()
            self.timings.normalize += normalize_seconds
            self.timings.load += time.monotonic() - loading

    def _batches_of(self, segment: Segment) -> Iterator[RowsByTable]:
        while True:
            try:
                item = segment.batches.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if self._abort.is_set():
                    raise _Aborted from None
                continue
            if item is _END:
                return
            yield item

    def _wait_turn(self, number: int) -> None:
        """Loads go in segment order: wait until the segment before is loaded."""
        with self._state:
            while self._loaded_through != number - 1:
                if self._abort.is_set():
                    raise _Aborted
                self._state.wait(_POLL_SECONDS)
