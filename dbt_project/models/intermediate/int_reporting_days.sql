{#-
  Every day of each project's reporting window, in its reporting time zone
  (int_reporting_time_zones; UTC by default): the local date of min(window_start) to the local
  date of max(finished_at) over its succeeded sync runs. `day_starts_at` and
  `next_day_starts_at` are the instants (UTC) of the local midnights starting the day and the
  next one (a DST change gives a day of 23 or 25 hours); `day_ends_at` is the instant the
  day's state is read at: midnight after the day, or the last sync for "today" (a partial day).
-#}
with sync_runs as (
    select * from {{ source('stripe', 'sync_runs') }}
    where status = 'succeeded'
),

time_zones as (
    select * from {{ ref('int_reporting_time_zones') }}
),

windows as (
    select
        sync_runs.project_id,
        time_zones.reporting_time_zone,
        {{ local_date('min(sync_runs.window_start)', 'time_zones.reporting_time_zone') }}
            as first_day,
        {{ local_date('max(sync_runs.finished_at)', 'time_zones.reporting_time_zone') }}
            as last_day,
        max(sync_runs.finished_at) as as_of
    from sync_runs
    inner join time_zones
        on sync_runs.project_id = time_zones.project_id
    group by sync_runs.project_id, time_zones.reporting_time_zone
),

-- each window's days: first_day + 0, 1, ... (numbered per window, no spine over every project)
numbered as (
    select
        windows.*,
        {{ numbers_from_one_to(dbt.datediff('windows.first_day', 'windows.last_day', 'day')
            ~ ' + 1') }} as day_number
    from windows
),

days as (
    select
        project_id,
        reporting_time_zone,
        cast({{ dbt.dateadd('day', 'day_number - 1', 'first_day') }} as date) as metric_date,
        last_day,
        as_of
    from numbered
),

bounded as (
    select
        days.*,
        {{ local_midnight('days.metric_date', 'days.reporting_time_zone') }} as day_starts_at,
        {{ local_midnight(dbt.dateadd('day', 1, 'days.metric_date'),
                          'days.reporting_time_zone') }} as next_day_starts_at
    from days
),

final as (
    select
        project_id,
        metric_date,
        least(next_day_starts_at, as_of) as day_ends_at,
        metric_date = last_day as is_last_day,
        as_of,
        day_starts_at,
        next_day_starts_at,
        reporting_time_zone
    from bounded
)

select * from final
