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

{% macro prepare_incremental_days(required_columns=[]) -%}
    {%- if is_incremental() -%}
    {%- set float_columns = adapter.get_columns_in_relation(this) | map(attribute='dtype')
        | map('upper') | select('in', ['DOUBLE', 'FLOAT', 'REAL']) | list -%}
    {%- set rewrite_whole = float_columns or not has_columns(this, required_columns) -%}
    create or replace temp table {{ rebuild_window_table() }} as
    select
        runs.project_id,
        cast({{ dbt.dateadd('day', -var('incremental_lookback_days'), 'cast(min(runs.window_start) as date)') }} as date)
            as rebuild_from_date
    from {{ source('stripe', 'sync_runs') }} as runs
    left join (
        select project_id, max(built_as_of) as built_as_of from {{ this }} group by project_id
    ) as built
        on runs.project_id = built.project_id
    where runs.status = 'succeeded'
        {%- if not rewrite_whole %}
        and (built.built_as_of is null or runs.finished_at > built.built_as_of)
        {%- endif %}
    group by runs.project_id;

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
    a full build, else only those (re)read by loads after the last build (each load stamps a
    later _synced_at; a re-read row replaces the staged one by its key). A staged table built
    before one of `required_columns` was added is re-read whole once, so no row lacks it. -#}
{% macro rows_synced_since_last_build(table, required_columns=[]) -%}
    select * from {{ source('stripe', table) }}
    {%- if is_incremental() and has_columns(this, required_columns) %}
    where _synced_at > (select max(synced_at) from {{ this }})
    {%- endif %}
{%- endmacro %}
