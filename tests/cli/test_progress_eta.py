"""Extraction shows an ETA against the objects the project's previous sync of the same kind read.

Plain lines (a pipe, a log): ``read N objects of ~E, ETA h:mm:ss``; the bar on a terminal
fills towards the same count. The numbers are checked against a clock the test moves.
"""

import io

from stripe_warehouse.progress import PlainProgress, TerminalProgress, extraction_eta


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_give_the_eta_from_the_previous_syncs_count() -> None:
    out, clock = io.StringIO(), Clock()
    progress = PlainProgress(out, clock=clock)
    progress.expect(4000)
    progress.phase("extract")
    clock.now += 10  # 1,000 objects in 10 s: 100/s, 3,000 to go: 30 s
    progress.objects({"customer": 600, "invoice": 400})
    clock.now += 10  # 2,500 in 20 s: 125/s, 1,500 to go: 12 s
    progress.objects({"customer": 1500, "invoice": 1000})
    lines = out.getvalue().splitlines()
    assert lines[1] == ("  read 1,000 objects of ~4,000, ETA 0:00:30 (customer 600, invoice 400), "
                        "100/s, elapsed 0:00:10")
    assert lines[2].startswith("  read 2,500 objects of ~4,000, ETA 0:00:12 (")


def test_a_first_sync_has_no_eta_and_an_account_that_grew_ends_at_zero() -> None:
    out, clock = io.StringIO(), Clock()
    progress = PlainProgress(out, clock=clock)
    progress.expect(None)  # no earlier sync of this kind recorded
    progress.phase("extract")
    clock.now += 5
    progress.objects({"customer": 1000})
    assert out.getvalue().splitlines()[1] == (
        "  read 1,000 objects (customer 1,000), 200/s, elapsed 0:00:05")
    assert extraction_eta(5000, 4000, 100.0) == 0  # past the previous count
    assert extraction_eta(10, None, 100.0) is None
    assert extraction_eta(10, 4000, 0.0) is None


def test_the_terminal_bar_fills_towards_the_expected_count() -> None:
    progress = TerminalProgress(io.StringIO())
    try:
        progress.expect(4000)
        progress.phase("extract")
        progress.objects({"customer": 1000})
        task = progress._display.tasks[-1]
        assert (task.completed, task.total) == (1000, 4000)
        assert task.fields["count"] == "1,000 of ~4,000 objects"
        progress.objects({"customer": 4500})  # grew since: the bar stays just ahead
        assert (task.completed, task.total) == (4500, 4501)
    finally:
        progress.close()
