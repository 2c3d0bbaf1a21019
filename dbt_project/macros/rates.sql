{#-
  numerator / denominator for the SaaS marts' rates and averages, rounded to six decimals half
  away from zero (a rate 0.052632 is 5.2632 %), null when the denominator is not above 0 (no
  base to measure against). DECIMAL, not a float, so that a figure reads the same digits on
  every build and on DuckDB and PostgreSQL (divide_money); the numerator may be a count or
  money (exact to 12 decimals), the denominator a count or money.
-#}
{% macro quotient(numerator, denominator) -%}
    case
        when {{ denominator }} > 0 then {{ divide_money(numerator, denominator) }}
    end
{%- endmacro %}
