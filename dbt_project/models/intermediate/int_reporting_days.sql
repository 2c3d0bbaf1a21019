{#-
  Every UTC day of each project's reporting window: date(min(window_start)) to
  date(max(finished_at)) over its succeeded sync runs. `day_ends_at` is the instant the day's
  state is read at: midnight after the day, or the last sync for "today" (a partial day).
-#}
{%- set runs = source('stripe', 'sync_runs') -%}
with sync_runs as (
    select * from {{ runs }}
    where status = 'succeeded'
),

windows as (
    select
        project_id,
        cast(min(window_start) as date) as first_day,
        cast(max(finished_at) as date) as last_day,
        max(finished_at) as as_of
    from sync_runs
    group by project_id
),

spine as (
    {{ dbt.date_spine(
        'day',
        "(select coalesce(cast(min(window_start) as date), current_date) from " ~ runs
            ~ " where status = 'succeeded')",
        "(select coalesce(cast(max(finished_at) as date), current_date) + 1 from " ~ runs
            ~ " where status = 'succeeded')"
    ) }}
),

final as (
    select
        windows.project_id,
        cast(spine.date_day as date) as metric_date,
        least(
            cast({{ dbt.dateadd('day', 1, 'cast(spine.date_day as date)') }} as timestamp),
            windows.as_of
        ) as day_ends_at,
        cast(spine.date_day as date) = windows.last_day as is_last_day,
        windows.as_of
    from windows
    inner join spine
        on cast(spine.date_day as date) between windows.first_day and windows.last_day
)

select * from final
