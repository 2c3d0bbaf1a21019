{#-
  Incremental rebuild by project and day. A build rewrites, per project, the days from the
  earliest window start of the sync runs it has not seen yet (minus var
  `incremental_lookback_days`), so a refresh costs in proportion to the days it touched.
  Stripe changes (a cancellation, an upgrade, a failed payment) happen at their event time,
  which a refresh window covers; changing the FX table or the rules needs `--full-refresh`.

  The window is fixed once, before anything is deleted, in a temporary table named after the
  model: rows keep `built_as_of` (the last sync they reflect) to find the runs not seen yet.
  A table built when money was DOUBLE (before DECIMAL money, docs/metrics-spec.md "Money") is
  rewritten whole, once: its columns become DECIMAL (on_schema_change) and every day is
  recomputed exactly, so no float residue stays in older days. Likewise a table lacking one
  of `required_columns` (a column added with a rule, e.g. `is_estimated` of removed items) was
  built by an older release and is rewritten whole, once, under the current rules.
-#}
{% macro rebuild_window_table() -%}
    {{ this.identifier }}__rebuild_window
{%- endmacro %}

{#- `create or replace temp table <name> as` (PostgreSQL has no `or replace` for tables). -#}
{% macro replace_temp_table(name) -%}
    {{ return(adapter.dispatch('replace_temp_table', 'stripe_warehouse')(name)) }}
{%- endmacro %}

{% macro default__replace_temp_table(name) -%}
    create or replace temp table {{ name }} as
{%- endmacro %}

{% macro postgres__replace_temp_table(name) -%}
    drop table if exists {{ name }};
    create temp table {{ name }} as
{%- endmacro %}

{#- The succeeded loads (sync_runs `runs`), with `not_built_only` those that finished after the
    last build of their project that {{ this }} reflects (its rows' max `built_as_of`). -#}
{% macro succeeded_runs(not_built_only) -%}
    from {{ sync_runs_outside_lineage() }} as runs
    left join (
        select project_id, max(built_as_of) as built_as_of from {{ this }} group by project_id
    ) as built
        on runs.project_id = built.project_id
    where runs.status = 'succeeded'
        {%- if not_built_only %}
        and (built.built_as_of is null or runs.finished_at > built.built_as_of)
        {%- endif %}
{%- endmacro %}

{% macro prepare_incremental_days(required_columns=[]) -%}
    {%- if is_incremental() -%}
    {%- set float_columns = adapter.get_columns_in_relation(this) | map(attribute='dtype')
        | map('upper') | select('in', ['DOUBLE', 'FLOAT', 'REAL']) | list -%}
    {%- set rewrite_whole = float_columns or not has_columns(this, required_columns) -%}
    {%- set runs_relation = sync_runs_outside_lineage() -%}
    {%- set zone = run_time_zone('runs', sync_runs_relation()) -%}
    {{ replace_temp_table(rebuild_window_table()) }}
    select
        unseen.project_id,
        case
            -- a load under another reporting time zone than the build's: every day of the
            -- project moves, each is rebuilt (docs/metrics-spec.md "Days")
            when unseen.first_time_zone <> built_zones.reporting_time_zone
                or unseen.last_time_zone <> built_zones.reporting_time_zone
                then cast('1900-01-01' as date)
            -- never after the last day already built: that day was partial ("today" then), and a
            -- load whose window starts days later (a webhook batch after days without a sync)
            -- must not leave the days in between unbuilt
            when built_days.last_built_date < unseen.rebuild_from_date
                then built_days.last_built_date
            else unseen.rebuild_from_date
        end as rebuild_from_date
    from (
        select
            runs.project_id,
            -- the day (of the run's reporting time zone) its window starts on
            cast({{ dbt.dateadd('day', -var('incremental_lookback_days'),
                'min(' ~ local_date('runs.window_start', zone) ~ ')') }} as date)
                as rebuild_from_date,
            min({{ zone }}) as first_time_zone,
            max({{ zone }}) as last_time_zone
        {{ succeeded_runs(not_built_only=not rewrite_whole) }}
        group by runs.project_id
    ) as unseen
    left join (
        select project_id, max(metric_date) as last_built_date from {{ this }} group by project_id
    ) as built_days
        on unseen.project_id = built_days.project_id
    -- the zone of the last load the project's rows reflect (their built_as_of)
    left join (
        select {{ first_row_of(['runs.project_id']) }}
            runs.project_id,
            {{ zone }} as reporting_time_zone
        from {{ runs_relation }} as runs
        inner join (
            select project_id, max(built_as_of) as built_as_of from {{ this }} group by project_id
        ) as built
            on runs.project_id = built.project_id
            and runs.finished_at <= built.built_as_of
        where runs.status = 'succeeded'
        {{ first_row_by(['runs.project_id'], 'runs.finished_at desc, runs.run_id desc') }}
    ) as built_zones
        on unseen.project_id = built_zones.project_id;

    delete from {{ this }}
    where exists (
        select 1
        from {{ rebuild_window_table() }} as rebuild
        where rebuild.project_id = {{ this }}.project_id
            and {{ this }}.metric_date >= rebuild.rebuild_from_date
    )
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- Joins `relation_alias` (with project_id, metric_date) to the days this build rewrites. -#}
{% macro only_days_to_rebuild(relation_alias) -%}
    {%- if is_incremental() -%}
    inner join {{ rebuild_window_table() }} as rebuild_window
        on {{ relation_alias }}.project_id = rebuild_window.project_id
        and {{ relation_alias }}.metric_date >= rebuild_window.rebuild_from_date
    {%- endif -%}
{%- endmacro %}

{#- Day order for a day-grained incremental model's full build: an incremental build deletes
    and appends whole recent days, so keeping each day's rows together makes it touch only the
    newest row groups, not every one of them (the rows it appends are recent days already). -#}
{% macro in_day_order_on_full_build() -%}
    {%- if not is_incremental() -%}
    order by metric_date, project_id
    {%- endif -%}
{%- endmacro %}

{#- True when the relation has every one of `column_names` (an incremental model's upgrade check). -#}
{% macro has_columns(relation, column_names) -%}
    {%- set existing = adapter.get_columns_in_relation(relation) | map(attribute='name')
        | map('lower') | list -%}
    {{- return(column_names | reject('in', existing) | list | length == 0) -}}
{%- endmacro %}

{#- The rows of a raw table that an incremental staging model still has to read: all of them on
    a full build, else, per project, the rows of the loads (sync_runs) that finished after the
    last build that staged a row of the project (`built_as_of`); a re-read row replaces the
    staged one by its key. A row's `_synced_at` is not when it was written: a sync stamps the
    time it read the row (before it takes the writer lock to load it), a webhook payload the
    event's time, a webhook's events their arrival. So rows written after a build can carry
    older stamps than rows already staged (another project's sync; this project's late webhook;
    a sync that read while a build ran), and "newer than the newest staged row" would skip them
    until a full refresh. Each load's rows are stamped no earlier than its run's `started_at`
    (a sync) or `window_start` (a webhook batch: its oldest event's time), minus
    var `late_row_margin_minutes` for the clock difference between Stripe and us: the rows of a
    project stamped from the earliest such bound of its unseen loads are read again
    (docs/metrics-spec.md "Late rows of one tenant"). The rows come with `built_as_of`, which
    the model keeps. A join on one row per project keeps the refresh as cheap as the old
    filter. A table built before one of `required_columns` (or `built_as_of`) was added is
    re-read whole once, so no row lacks it. -#}
{% macro rows_synced_since_last_build(table, required_columns=[]) -%}
    select raw.*, project_loads.built_as_of
    from {{ source('stripe', table) }} as raw
    {{ staged_built_as_of_join('raw') }}
    {%- if is_incremental() and has_columns(this, required_columns + ['built_as_of']) %}
    inner join (
        select
            runs.project_id,
            -- a run missing its times (never written by ours) reads the project whole
            min(coalesce(
                case when runs.kind = 'webhook' then runs.window_start else runs.started_at end,
                timestamp '1970-01-01'
            )) - {{ minutes_interval(var('late_row_margin_minutes')) }} as read_from
        {{ succeeded_runs(not_built_only=true) }}
        group by runs.project_id
    ) as unseen_loads
        on raw.project_id = unseen_loads.project_id
        and raw._synced_at >= unseen_loads.read_from
    {%- endif %}
{%- endmacro %}

{#- Adds `built_as_of` to `relation_alias` (with project_id): the last load of its project
    that this build reflects, kept on each staged row for rows_synced_since_last_build. -#}
{% macro staged_built_as_of_join(relation_alias) -%}
    left join (
        select project_id, max(finished_at) as built_as_of
        from {{ sync_runs_outside_lineage() }}
        where status = 'succeeded'
        group by project_id
    ) as project_loads
        on {{ relation_alias }}.project_id = project_loads.project_id
{%- endmacro %}

{#- `sync_runs` for the staging models' bookkeeping, read without making it their parent in
    dbt's graph: every webhook batch appends a sync_runs row, and the real-time marts refresh
    (service/marts_refresh.py) rebuilds whatever descends from a changed raw table, so a graph
    edge would re-parse every staged table after each batch. Their content does not depend on
    it (only `built_as_of`, which at worst makes the next build read a few rows again). So the
    table is named from the source's definition rather than through `source()`; a dbt unit
    test (whose graph lists no sources) sees no loads. -#}
{% macro sync_runs_outside_lineage() -%}
    {%- set relation = sync_runs_relation() -%}
    {%- if relation is not none -%}
    {{ relation }}
    {%- else -%}
    (select cast(null as varchar) as project_id, cast(null as varchar) as kind,
        cast(null as varchar) as status, cast(null as timestamp) as window_start,
        cast(null as timestamp) as started_at, cast(null as timestamp) as finished_at
    where false)
    {%- endif -%}
{%- endmacro %}

{#- The relation of the source `sync_runs` (sync_runs_outside_lineage), none without a graph. -#}
{% macro sync_runs_relation() -%}
    {%- set sources = graph.get('sources', {}).values() if execute else [] -%}
    {%- set runs = sources | selectattr('source_name', 'equalto', 'stripe')
        | selectattr('name', 'equalto', 'sync_runs') | list -%}
    {%- if runs -%}
    {{ return(api.Relation.create(database=runs[0].database, schema=runs[0].schema,
                                  identifier=runs[0].identifier)) }}
    {%- else -%}
    {{ return(none) }}
    {%- endif -%}
{%- endmacro %}
