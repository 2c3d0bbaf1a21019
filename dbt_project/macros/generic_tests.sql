{#- Fails with every combination of `columns` that occurs more than once (the model's grain). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
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
