"""`stripe-warehouse metrics PROJECT --by SEGMENT` on a hand-made published copy (no dbt build):
the month of --date, its values largest MRR first, the rates as percentages; a segment the
project does not have is one line naming those it has (exit 2), and nothing is written.

The copy's October 2026 for project `acme`, segment plan: Pro $300.00 (3 customers, churn
rate 1 / 4 = 0.25, NRR 0.9, ARPA $100.00) above Starter $57.00 (3 customers, no churn base:
n/a, ARPA $19.00); September holds Pro only; acme also has the metadata segment
customer.tier, `other` a segment of its own that acme's error must not name.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from commands.cli import main

COLUMNS = (
    "project_id varchar, metric_month date, segment varchar, segment_value varchar, "
    "last_day date, first_day date, is_partial_month boolean, closing_mrr decimal(38, 6), "
    "customers_at_end bigint, new_mrr decimal(38, 6), expansion_mrr decimal(38, 6), "
    "reactivation_mrr decimal(38, 6), contraction_mrr decimal(38, 6), churn_mrr decimal(38, 6), "
    "customer_churn_rate decimal(38, 6), net_revenue_retention_1m decimal(38, 6), "
    "gross_revenue_retention_1m decimal(38, 6), arpa decimal(38, 6)"
)
ROWS = [
    ("acme", "2026-10-01", "plan", "Starter", "2026-10-31", "2026-10-01", False, 57, 3, 57, 0,
     0, 0, 0, None, None, None, 19),
    ("acme", "2026-10-01", "plan", "Pro", "2026-10-31", "2026-10-01", False, 300, 3, 0, 50, 0,
     0, 100, 0.25, 0.9, 0.8, 100),
    ("acme", "2026-09-01", "plan", "Pro", "2026-09-30", "2026-09-01", False, 350, 4, 350, 0, 0,
     0, 0, None, None, None, 87.5),
    ("acme", "2026-10-01", "customer.tier", "gold", "2026-10-31", "2026-10-01", False, 357, 6,
     57, 50, 0, 0, 100, 0.2, 0.9, 0.8, 59.5),
    ("other", "2026-10-01", "subscription.channel", "web", "2026-10-31", "2026-10-01", False,
     10, 1, 10, 0, 0, 0, 0, None, None, None, 10),
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory whose published copy holds the segments mart above."""
    home = tmp_path / "home"
    home.mkdir()
    with duckdb.connect(str(home / "reporting.duckdb")) as con:
        con.execute("create schema marts")
        con.execute(f"create table marts.fct_mrr_by_segment_monthly ({COLUMNS})")
        con.executemany("insert into marts.fct_mrr_by_segment_monthly values "
                        f"({', '.join('?' * 18)})", ROWS)
    monkeypatch.setenv("STRIPE_WAREHOUSE_HOME", str(home))
    return home


def test_by_plan_prints_the_month_of_the_date_largest_mrr_first(home, capsys) -> None:
    assert main(["metrics", "acme", "--by", "plan", "--date", "2026-10-15"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("acme by plan, 2026-10: ")
    assert lines[2].split() == ["Pro", "$300.00", "3", "$0.00", "$50.00", "$0.00", "$0.00",
                                "$100.00", "25.0%", "90.0%", "80.0%", "$100.00"]
    assert lines[3].split() == ["Starter", "$57.00", "3", "$57.00", "$0.00", "$0.00", "$0.00",
                                "$0.00", "n/a", "n/a", "n/a", "$19.00"]
    assert len(lines) == 5  # title, header, two values, the rule


def test_by_json_without_date_is_the_latest_month_with_exact_decimals(home, capsys) -> None:
    assert main(["metrics", "acme", "--by", "plan", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["month"] == "2026-10-01" and payload["is_partial_month"] is False
    assert [(v["segment_value"], v["closing_mrr"], v["customer_churn_rate"])
            for v in payload["values"]] == [("Pro", "300.000000", "0.250000"),
                                            ("Starter", "57.000000", None)]


def test_unknown_segment_is_one_line_naming_the_projects_segments(home, capsys) -> None:
    before = sorted((p.name, p.stat().st_mtime_ns) for p in home.iterdir())
    assert main(["metrics", "acme", "--by", "planet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("error: no segment 'planet' for project acme: use one of plan, "
                            "customer.tier\n")
    assert sorted((p.name, p.stat().st_mtime_ns) for p in home.iterdir()) == before


def test_a_day_outside_the_window_is_one_line(home, capsys) -> None:
    assert main(["metrics", "acme", "--by", "plan", "--date", "2026-12-01"]) == 2
    assert capsys.readouterr().err == (
        "error: no segments for project acme on 2026-12-01: pick a day inside the synced "
        "window (2026-09-01 to 2026-10-31)\n")


def test_by_and_metrics_together_is_one_line(home, capsys) -> None:
    assert main(["metrics", "acme", "--by", "plan", "--metrics", "arpa"]) == 2
    assert capsys.readouterr().err.startswith("error: --by splits the month's MRR")
