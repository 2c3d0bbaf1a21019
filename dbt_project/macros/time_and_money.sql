{#- Stripe's unix seconds as a UTC timestamp without time zone. -#}
{% macro from_unix_seconds(column) -%}
    {{ return(adapter.dispatch('from_unix_seconds', 'stripe_warehouse')(column)) }}
{%- endmacro %}

{% macro default__from_unix_seconds(column) -%}
    make_timestamp(cast({{ column }} as bigint) * 1000000)
{%- endmacro %}

{% macro postgres__from_unix_seconds(column) -%}
    (to_timestamp(cast({{ column }} as bigint)) at time zone 'UTC')
{%- endmacro %}

{#- An interval of `count` minutes. -#}
{% macro minutes_interval(count) -%}
    {{ return(adapter.dispatch('minutes_interval', 'stripe_warehouse')(count)) }}
{%- endmacro %}

{% macro default__minutes_interval(count) -%}
    to_minutes({{ count }})
{%- endmacro %}

{% macro postgres__minutes_interval(count) -%}
    make_interval(mins => {{ count }})
{%- endmacro %}

{#-
  Money is exact (docs/metrics-spec.md "Money"): DECIMAL(38, 6) from staging on, never a float.
  A floating-point sum depends on the order its rows are added in, which a parallel or an
  incremental build does not fix: the same account gave MRR 1520.9683326 in one run and
  1520.9683326000002 in the next. A sum of DECIMALs is exact, so any order gives the same digits.
  Six decimals hold every minor unit Stripe uses (at most 3) and a millionth of a unit for what
  is computed: a normalised monthly amount, a discount share, a USD conversion. Each of those is
  rounded to six decimals, half away from zero, once, on the row where it is computed
  (`divide_money`, `to_usd`); every figure above that row is a sum or an exact difference.
  Decimal(38, 6), cast(... as decimal(38, 6)) and the rounding rule read the same on PostgreSQL.
-#}
{% macro money_type() -%}
    decimal(38, 6)
{%- endmacro %}

{% macro as_money(expression) -%}
    cast({{ expression }} as {{ money_type() }})
{%- endmacro %}

{#-
  USD per unit of a currency, to 12 decimals: six significant digits even for currencies worth
  a hundred-thousandth of a dollar (VND, IDR). A money amount times a rate is exact at 18
  decimals before `to_usd` rounds it.
-#}
{% macro rate_type() -%}
    decimal(38, 12)
{%- endmacro %}

{#- An amount in USD at `rate`: the exact product, rounded to six decimals half away from zero.
    A USD amount (rate 1) is rounded as it is: the same figure without a DECIMAL(38) product per
    row, which DuckDB computes slowly (bench/transform_build.py: most rows are in USD). -#}
{% macro to_usd(amount, rate) -%}
    case
        when {{ rate }} = 1 then {{ as_money(amount) }}
        else {{ as_money(amount ~ ' * ' ~ rate) }}
    end
{%- endmacro %}

{#-
  Stripe amounts are integers in the currency's minor unit; `exponent` comes from the
  `currency_exponents` seed (2 when the currency is not listed there). The amount times
  10^-exponent is exact in decimal (a division would give a DOUBLE in DuckDB).
-#}
{% macro minor_to_major(amount, exponent) -%}
    {{ as_money('cast(' ~ amount ~ ' as decimal(38, 0)) * cast(power(10, -coalesce('
        ~ exponent ~ ', 2)) as ' ~ money_type() ~ ')') }}
{%- endmacro %}

{#-
  numerator / denominator as money, rounded to six decimals half away from zero: the one
  rounding rule of every division of money (normalising an interval to a month, a discount's
  share). The numerator is exact to 12 decimals (e.g. a product of two money amounts), the
  denominator to 6 and positive.
-#}
{% macro divide_money(numerator, denominator) -%}
    {{ return(adapter.dispatch('divide_money', 'stripe_warehouse')(numerator, denominator)) }}
{%- endmacro %}

{#- PostgreSQL and the like: numeric division keeps enough digits; the cast rounds half away from zero. -#}
{% macro default__divide_money(numerator, denominator) -%}
    {{ as_money('cast(' ~ numerator ~ ' as decimal(38, 12)) / cast(' ~ denominator
        ~ ' as decimal(38, 6))') }}
{%- endmacro %}

{#-
  DuckDB divides decimals in DOUBLE, so the division is done on the integers behind the
  decimals: n = numerator x 10^12 and d = denominator x 10^6 make n / d the quotient in
  millionths; (2|n| + d) // 2d rounds it half away from zero (`//` truncates). Exact while the
  numerator stays below 10^14 (units of the currency), beyond which DuckDB stops with an
  overflow error rather than a wrong figure.
-#}
{% macro duckdb__divide_money(numerator, denominator) -%}
    {%- set n = 'cast(cast(' ~ numerator ~ ' as decimal(38, 12)) * 1000000000000 as hugeint)' -%}
    {%- set d = 'cast(cast(' ~ denominator ~ ' as ' ~ money_type() ~ ') * 1000000 as hugeint)' -%}
    {{ as_money('cast(sign(' ~ n ~ ') * ((abs(' ~ n ~ ') * 2 + ' ~ d ~ ') // (2 * ' ~ d ~ '))'
        ~ ' as decimal(38, 0)) * cast(0.000001 as ' ~ money_type() ~ ')') }}
{%- endmacro %}

{#- A ratio of two amounts as a floating-point number (ratios are the one place for floats):
    DuckDB divides decimals in DOUBLE; PostgreSQL would keep numeric, so it casts first. -#}
{% macro ratio(numerator, denominator) -%}
    {{ return(adapter.dispatch('ratio', 'stripe_warehouse')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__ratio(numerator, denominator) -%}
    {{ numerator }}
                    / {{ denominator }}
{%- endmacro %}

{% macro postgres__ratio(numerator, denominator) -%}
    cast({{ numerator }} as double precision) / cast({{ denominator }} as double precision)
{%- endmacro %}

{#- Stops the build with `message` (a SQL string expression) when evaluated. -#}
{% macro raise_error(message) -%}
    {{ return(adapter.dispatch('raise_error', 'stripe_warehouse')(message)) }}
{%- endmacro %}

{% macro default__raise_error(message) -%}
    error({{ message }})
{%- endmacro %}

{#-
  One row per integer 1..`count` of each row (none when `count` < 1), as a select-list
  expression: `select t.*, {{ numbers_from_one_to('t.n') }} as k from t`. Unlike
  `dbt.generate_series(N)`, whose bound is fixed when the SQL is compiled, the count is the
  row's own (int_payment_failures capped an invoice's attempts at the 10 such a series held).
-#}
{% macro numbers_from_one_to(count) -%}
    {{ return(adapter.dispatch('numbers_from_one_to', 'stripe_warehouse')(count)) }}
{%- endmacro %}

{#- PostgreSQL: a set-returning function in the select list. -#}
{% macro default__numbers_from_one_to(count) -%}
    generate_series(1, {{ count }})
{%- endmacro %}

{#- DuckDB: generate_series returns a list (inclusive of both ends); unnest makes rows. -#}
{% macro duckdb__numbers_from_one_to(count) -%}
    unnest(generate_series(1, cast({{ count }} as bigint)))
{%- endmacro %}
