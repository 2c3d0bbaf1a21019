{#-
  The rows of `model` a test checks: with `rebuilt_days_only` (incremental day models with
  project_id, metric_date, built_as_of), only the days the last build rewrote, per project from
  the earliest day it wrote on, old rows of those days included; older days were checked by
  the build that wrote them. A full build writes every day, so it checks everything. Without
  it, every row.
-#}
{% macro checked_rows_cte(model, rebuilt_days_only) -%}
{%- if rebuilt_days_only %}
last_builds as (
    select project_id, max(built_as_of) as built_as_of from {{ model }} group by project_id
),

rebuilt_from as (
    select checked.project_id, min(checked.metric_date) as first_day
    from {{ model }} as checked
    inner join last_builds
        on checked.project_id = last_builds.project_id
        and checked.built_as_of = last_builds.built_as_of
    group by checked.project_id
),

checked_rows as (
    select checked.*
    from {{ model }} as checked
    inner join rebuilt_from
        on checked.project_id = rebuilt_from.project_id
        and checked.metric_date >= rebuilt_from.first_day
)
{%- else %}
checked_rows as (
    select * from {{ model }}
)
{%- endif %}
{%- endmacro %}

{#-
  Fails with every combination of `columns` that occurs more than once (the model's grain),
  over `checked_rows_cte`'s rows.
-#}
{% test unique_combination(model, columns, rebuilt_days_only=false) %}
with {{ checked_rows_cte(model, rebuilt_days_only) }}

select {{ columns | join(', ') }}, count(*) as occurrences
from checked_rows
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#-
  A model's column rules in one test: `not_null` columns never null, `non_negative` columns
  never below zero. Fails with one row per broken rule (rule, column, failing_rows), so the
  failure names the column. One scan and one dbt node for the whole model: dbt build runs a
  model's tests before its children, and one node per column and rule (54 across the marts
  and intermediates) held up every refresh for dbt's own cost per node, not for their SQL.
  `rebuilt_days_only`: as `unique_combination`'s, so a refresh does not rescan every item-day.
-#}
{% test column_checks(model, not_null=[], non_negative=[], rebuilt_days_only=false) %}
{%- set rules = [] -%}
{%- for column in not_null -%}
    {%- do rules.append({'rule': 'not_null', 'column': column, 'breaks': column ~ ' is null'}) -%}
{%- endfor -%}
{%- for column in non_negative -%}
    {%- do rules.append({'rule': 'non_negative', 'column': column, 'breaks': column ~ ' < 0'}) -%}
{%- endfor -%}
{%- if not rules -%}
    {{ exceptions.raise_compiler_error("column_checks on " ~ model ~ " lists no column: give not_null or non_negative") }}
{%- endif %}
with {{ checked_rows_cte(model, rebuilt_days_only) }},

counts as (
    select
        {%- for rule in rules %}
        sum(case when {{ rule.breaks }} then 1 else 0 end) as failing_{{ loop.index }}
        {{- ',' if not loop.last }}
        {%- endfor %}
    from checked_rows
)

{% for rule in rules -%}
select '{{ rule.rule }}' as rule, '{{ rule.column }}' as column_name, failing_{{ loop.index }} as failing_rows
from counts
where failing_{{ loop.index }} > 0
{% if not loop.last %}union all
{% endif -%}
{%- endfor %}
{% endtest %}

{#- Fails where `column_name` differs from `factor` x `other_column` by more than a cent. -#}
{% test equals_multiple_of(model, column_name, other_column, factor) %}
select *
from {{ model }}
where abs({{ column_name }} - {{ factor }} * {{ other_column }}) > 0.01
{% endtest %}

{#- Fails for every project day of the reporting window missing from the model. -#}
{% test covers_every_reporting_day(model, date_column='metric_date') %}
select days.project_id, days.metric_date
from {{ ref('int_reporting_days') }} as days
left join (select distinct project_id, {{ date_column }} as metric_date from {{ model }}) as covered
    on days.project_id = covered.project_id
    and days.metric_date = covered.metric_date
where covered.metric_date is null
{% endtest %}
