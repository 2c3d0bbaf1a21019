{#-
  Fails with every combination of `columns` that occurs more than once (the model's grain).
  `rebuilt_days_only` (incremental day models with project_id, metric_date, built_as_of): only
  the days the last build rewrote, per project from the earliest day it wrote on, old rows of
  those days included; older days were checked by the build that wrote them. A full build
  writes every day, so it checks everything.
-#}
{% test unique_combination(model, columns, rebuilt_days_only=false) %}
{%- if rebuilt_days_only %}
with last_builds as (
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
with checked_rows as (
    select * from {{ model }}
)
{%- endif %}

select {{ columns | join(', ') }}, count(*) as occurrences
from checked_rows
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Fails with every row where the column is below zero. -#}
{% test non_negative(model, column_name) %}
select *
from {{ model }}
where {{ column_name }} < 0
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
