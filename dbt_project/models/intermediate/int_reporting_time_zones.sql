{#-
  Each project's reporting time zone (IANA name, default UTC): the one its latest succeeded
  load was made under (`stripe-warehouse timezone PROJECT NAME` sets it in the registry; each
  sync and webhook batch writes it on its sync_runs row). Every day and month of the project's
  marts follows it (macros/reporting_time_zone.sql).
-#}
{%- set runs_relation = source('stripe', 'sync_runs') %}
with sync_runs as (
    select * from {{ runs_relation }}
    where status = 'succeeded'
),

final as (
    select {{ first_row_of(['runs.project_id']) }}
        runs.project_id,
        {{ run_time_zone('runs', runs_relation) }} as reporting_time_zone
    from sync_runs as runs
    {{ first_row_by(['runs.project_id'], 'runs.finished_at desc, runs.run_id desc') }}
)

select * from final
