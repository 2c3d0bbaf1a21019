{#-
  Days in the project's reporting time zone (docs/metrics-spec.md "Days"): an instant belongs
  to the local calendar day it falls on, and a day's state is read at local midnight ending it.
  Instants are UTC timestamps without time zone (the profiles pin the session zone to UTC);
  `time_zone` is an IANA name (int_reporting_time_zones, one per project). DuckDB reads
  `x at time zone z` as `timezone(z, x)`, PostgreSQL as its own operator: the same spelling
  means the same on both targets (a naive timestamp at a zone is that zone's instant; an
  instant at a zone is the zone's wall-clock time), so no dispatch is needed.

  Every day derived from an instant goes through `local_date` (a few rows: one per customer,
  trial or estimated change) or, for the many rows of a daily fact, through
  `join_reporting_day_of`: an equality join on the instant's UTC date to the parts of the
  reporting days (int_reporting_day_parts, whose bounds are `local_midnight`s), not a zone
  conversion per row.
-#}

{#- The wall-clock time of `instant` in `time_zone`. The cast makes a `timestamp with time
    zone` (dlt's sync_runs columns) the UTC timestamp it is in the session's zone, UTC. -#}
{% macro local_time(instant, time_zone) -%}
    (cast({{ instant }} as timestamp) at time zone 'UTC') at time zone {{ time_zone }}
{%- endmacro %}

{#- The calendar day of `time_zone` that `instant` falls on. -#}
{% macro local_date(instant, time_zone) -%}
    cast({{ local_time(instant, time_zone) }} as date)
{%- endmacro %}

{#- The instant (UTC) at which `day` starts in `time_zone`: its local midnight (a midnight
    skipped by a DST change: the instant the clocks jump, when the day starts). -#}
{% macro local_midnight(day, time_zone) -%}
    ((cast({{ day }} as timestamp)) at time zone {{ time_zone }}) at time zone 'UTC'
{%- endmacro %}

{#- Joins `alias`, the reporting day (project_id, metric_date) `instant` of the row's project
    falls on; rows outside the project's reporting window find none. -#}
{% macro join_reporting_day_of(instant, project_id, alias) -%}
    inner join {{ ref('int_reporting_day_parts') }} as {{ alias }}
        on {{ project_id }} = {{ alias }}.project_id
        and cast({{ instant }} as date) = {{ alias }}.utc_date
        and {{ instant }} >= {{ alias }}.part_starts_at
        and {{ instant }} < {{ alias }}.part_ends_at
{%- endmacro %}

{#- The reporting time zone each run of `runs_alias` (rows of `relation`, sync_runs) was loaded
    under: UTC when unset, or when the warehouse's sync_runs predates the column (a build before
    the first sync of this release) or there is no relation (a dbt unit test's graph). -#}
{% macro run_time_zone(runs_alias, relation) -%}
    {%- if execute and relation is not none
            and has_columns(relation, ['reporting_time_zone']) -%}
    coalesce({{ runs_alias }}.reporting_time_zone, 'UTC')
    {%- else -%}
    'UTC'
    {%- endif -%}
{%- endmacro %}
