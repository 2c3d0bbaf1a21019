{#-
  Each reporting day (int_reporting_days) cut at the UTC midnights inside it: the part
  [part_starts_at, part_ends_at) of local day `metric_date` that falls on UTC date `utc_date`.
  An instant's reporting day is the day of the part holding it, found by an equality join on
  its UTC date (macro join_reporting_day_of): one to three candidate parts, no zone conversion
  per row. A UTC project's day is one part, its own date. The last day's part runs to the
  midnight after it (an instant after the last sync still falls on "today").
-#}
with days as (
    select project_id, metric_date, day_starts_at, next_day_starts_at
    from {{ ref('int_reporting_days') }}
),

-- a local day (at most 25 hours) touches at most three UTC dates
offsets as (
    select 0 as day_offset
    union all
    select 1 as day_offset
    union all
    select 2 as day_offset
),

candidate_parts as (
    select
        days.project_id,
        days.metric_date,
        days.day_starts_at,
        days.next_day_starts_at,
        cast({{ dbt.dateadd('day', 'offsets.day_offset', 'cast(days.day_starts_at as date)') }}
            as date) as utc_date
    from days
    cross join offsets
),

final as (
    select
        project_id,
        metric_date,
        utc_date,
        greatest(day_starts_at, cast(utc_date as timestamp)) as part_starts_at,
        least(next_day_starts_at,
              cast({{ dbt.dateadd('day', 1, 'utc_date') }} as timestamp)) as part_ends_at
    from candidate_parts
    where cast(utc_date as timestamp) < next_day_starts_at
)

select * from final
