{#- The daily FX table: the shipped seed, or the relation named by var `fx_rates_relation`. -#}
{% macro fx_rates_relation() -%}
    {%- if var('fx_rates_relation') -%}
        {{ var('fx_rates_relation') }}
    {%- else -%}
        {{ ref('fx_rates_usd') }}
    {%- endif -%}
{%- endmacro %}

{#- The ECB reference rates (currency, rate_date, usd_per_unit): the Python model
    int_fx_rates_ecb on DuckDB; on PostgreSQL, where dbt runs no Python model, the same rows
    written by the sync (pipelines.load.ensure_postgres_fx_rates, from fx_reference.usd_rates). -#}
{% macro ecb_rates_relation() -%}
    {%- if target.type == 'duckdb' -%}
        {{ ref('int_fx_rates_ecb') }}
    {%- else -%}
        {{ source('stripe', 'fx_rates_ecb') }}
    {%- endif -%}
{%- endmacro %}

{#-
  The length of one billing interval of `interval` x `interval_count`, in units of 1/4745 month
  (4745 = 13 x 365): a month is 4745 units, a year 56940, a week (12/52 month) 1095 and a day
  (12/365 month) 156, all whole, so normalising to a month is one exact division (`per_month`)
  instead of a product of repeating fractions.
-#}
{% macro interval_units(interval, interval_count) -%}
    (case {{ interval }}
        when 'month' then 4745
        when 'year' then 56940
        when 'week' then 1095
        when 'day' then 156
    end * coalesce({{ interval_count }}, 1))
{%- endmacro %}

{#- An amount per billing interval of `units` (`interval_units`) as money per month. -#}
{% macro per_month(amount, units) -%}
    {{ divide_money('(' ~ amount ~ ') * 4745', units) }}
{%- endmacro %}
