{#-
  Every calendar month of each project's reporting window (int_reporting_days: months of its
  reporting time zone, ending at local midnight) and how much of it the window covers. The monthly SaaS marts read a month between two instants: its start,
  the opening MRR of `first_movement_day` (the MRR at the end of the day before it), and its
  end, the end of `last_day`. fct_mrr_movements starts on the window's second day, so the
  window's first month starts at the end of the window's first day.
-#}
with days as (
    select * from {{ ref('int_reporting_days') }}
),

windows as (
    select project_id, min(metric_date) as window_first_day, max(metric_date) as window_last_day
    from days
    group by project_id
),

months as (
    select
        days.project_id,
        cast({{ dbt.date_trunc('month', 'days.metric_date') }} as date) as metric_month,
        min(days.metric_date) as first_day,
        min(case when days.metric_date > windows.window_first_day then days.metric_date end)
            as first_movement_day,
        max(days.metric_date) as last_day,
        max(days.day_ends_at) as month_read_at,
        max(days.next_day_starts_at) as last_day_ends_at,
        max(windows.window_last_day) as window_last_day,
        max(days.reporting_time_zone) as reporting_time_zone
    from days
    inner join windows
        on days.project_id = windows.project_id
    group by days.project_id, cast({{ dbt.date_trunc('month', 'days.metric_date') }} as date)
),

final as (
    select
        project_id,
        metric_month,
        first_day,
        first_movement_day,
        last_day,
        window_last_day,
        -- partial unless opened at midnight before its first day (the day before is in the
        -- window) and read at (local) midnight after its last day, the month's last (not a
        -- last sync's partial "today")
        -- (a window starting on a month's last day gives that month no movement day at all)
        (first_movement_day is null
            or first_movement_day > metric_month
            or last_day < cast({{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'metric_month'))
                }} as date)
            or month_read_at < last_day_ends_at)
            as is_partial_month,
        reporting_time_zone
    from months
)

select * from final
