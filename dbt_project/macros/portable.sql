{#-
  SQL that DuckDB and PostgreSQL write differently, beyond JSON (json.sql) and money
  (time_and_money.sql). DuckDB's rendering is the SQL the models had before PostgreSQL was a
  target, so its builds are unchanged.

  The first row of each group (DuckDB's `qualify row_number() over (...) = 1`):
      select {{ first_row_of(['a', 'b']) }} a, b, c from t
      where ...
      {{ first_row_by(['a', 'b'], 'c desc') }}
  PostgreSQL has no QUALIFY: `select distinct on (a, b) ... order by a, b, c desc`.
-#}
{% macro first_row_of(partition) -%}
    {{ return(adapter.dispatch('first_row_of', 'stripe_warehouse')(partition)) }}
{%- endmacro %}

{% macro default__first_row_of(partition) -%}{%- endmacro %}

{% macro postgres__first_row_of(partition) -%}
    distinct on ({{ partition | join(', ') }})
{%- endmacro %}

{% macro first_row_by(partition, order) -%}
    {{ return(adapter.dispatch('first_row_by', 'stripe_warehouse')(partition, order)) }}
{%- endmacro %}

{% macro default__first_row_by(partition, order) -%}
    qualify row_number() over (
        partition by {{ partition | join(', ') }}
        order by {{ order }}
    ) = 1
{%- endmacro %}

{% macro postgres__first_row_by(partition, order) -%}
    order by {{ partition | join(', ') }}, {{ order }}
{%- endmacro %}
