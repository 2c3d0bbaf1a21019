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
  A customer's retained MRR over a period, from its int_customer_mrr_monthly rows of the
  period's first month (`starts`) and last month (`ends`, null once it has no row): its MRR at
  the end of the period without the period's FX movement (MRR at the exchange rates of the
  period's start), never below 0; 0 once churned. fct_saas_metrics_monthly's retention and the
  per-customer fct_customer_retention_monthly read it (docs/metrics-spec.md "SaaS metrics").
-#}
{% macro retained_mrr(starts, ends) -%}
    case
        when coalesce({{ ends }}.closing_mrr, 0) > 0 then greatest(
            {{ ends }}.closing_mrr
                - ({{ ends }}.cumulative_fx_mrr
                    - ({{ starts }}.cumulative_fx_mrr - {{ starts }}.fx_mrr)),
            0)
        else 0
    end
{%- endmacro %}
