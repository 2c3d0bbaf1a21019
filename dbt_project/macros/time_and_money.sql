{#- Stripe's unix seconds as a UTC timestamp without time zone. -#}
{% macro from_unix_seconds(column) -%}
    {{ return(adapter.dispatch('from_unix_seconds', 'stripe_warehouse')(column)) }}
{%- endmacro %}

{% macro default__from_unix_seconds(column) -%}
    make_timestamp(cast({{ column }} as bigint) * 1000000)
{%- endmacro %}

{#-
  Stripe amounts are integers in the currency's minor unit; `exponent` comes from the
  `currency_exponents` seed (2 when the currency is not listed there).
-#}
{% macro minor_to_major(amount, exponent) -%}
    cast({{ amount }} as double) / power(10, coalesce({{ exponent }}, 2))
{%- endmacro %}

{#- Stops the build with `message` (a SQL string expression) when evaluated. -#}
{% macro raise_error(message) -%}
    {{ return(adapter.dispatch('raise_error', 'stripe_warehouse')(message)) }}
{%- endmacro %}

{% macro default__raise_error(message) -%}
    error({{ message }})
{%- endmacro %}
