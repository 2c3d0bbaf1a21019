{#- The daily FX table: the shipped seed, or the relation named by var `fx_rates_relation`. -#}
{% macro fx_rates_relation() -%}
    {%- if var('fx_rates_relation') -%}
        {{ var('fx_rates_relation') }}
    {%- else -%}
        {{ ref('fx_rates_usd') }}
    {%- endif -%}
{%- endmacro %}

{#- Months in one billing interval of `interval` x `interval_count` (week and day: 52/12, 365/12). -#}
{% macro interval_months(interval, interval_count) -%}
    (case {{ interval }}
        when 'month' then 1.0
        when 'year' then 12.0
        when 'week' then 12.0 / 52.0
        when 'day' then 12.0 / 365.0
    end * coalesce({{ interval_count }}, 1))
{%- endmacro %}
