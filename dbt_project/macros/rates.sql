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

{#-
  What a customer paying at a period's start still pays at its end, for net revenue retention:
  its closing MRR with the period's FX movement (`fx_since_start`) taken out, never below 0;
  0 once it pays nothing (ChartMogul's NRR). Gross retention caps it at the starting MRR.
-#}
{% macro retained_mrr(closing_mrr, fx_since_start) -%}
    case
        when coalesce({{ closing_mrr }}, 0) > 0
            then greatest({{ closing_mrr }} - ({{ fx_since_start }}), 0)
        else 0
    end
{%- endmacro %}
