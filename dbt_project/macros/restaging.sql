{#-
  Change detection for the staging models of objects that every sync lists whole:
  subscriptions and their items (a refresh re-lists every subscription, status=all, and with
  each its items, changed or not). Such a model is incremental like the other staging models
  (rows_synced_since_last_build: the raw rows of the loads it has not read), and keeps on each
  staged row a hash of the raw columns it is parsed from (`content_hash`). A re-read row whose
  hash is the staged row's is not parsed again: the pre-hook only restamps its `synced_at` and
  `built_as_of` (what a re-parse would have changed), so every staged row stays exactly what
  parsing its current raw row gives. Only new and changed objects are parsed and replaced
  by key: a refresh costs in proportion to what changed, not to what was listed.

  The re-read rows are fixed once, by the pre-hook, in a temporary table named after the
  model (with `is_changed`), before the restamp moves `built_as_of` (after it, the loads not
  seen yet would look seen). A table built before it had `content_hash` (or one of
  `required_columns`) is re-read whole once. A hash collision between an object's old and new
  content (64 bits on DuckDB, md5 on PostgreSQL) would keep the old parse until a full refresh.
-#}
{% macro restaged_rows_table() -%}
    {{ this.identifier }}__restaged
{%- endmacro %}

{#- The hash of the `columns` of `alias` in one row, to compare a re-read row with its staged one. -#}
{% macro content_hash(alias, columns) -%}
    {%- set qualified = [] -%}
    {%- for column in columns -%}{%- do qualified.append(alias ~ '.' ~ column) -%}{%- endfor -%}
    {{ return(adapter.dispatch('content_hash', 'stripe_warehouse')(qualified)) }}
{%- endmacro %}

{% macro default__content_hash(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}

{#- a row's text tells null from empty: ("",) is not (,) -#}
{% macro postgres__content_hash(columns) -%}
    md5(cast(row({{ columns | join(', ') }}) as text))
{%- endmacro %}

{% macro is_restaging(required_columns) -%}
    {{- return(is_incremental()
        and has_columns(this, required_columns + ['built_as_of', 'content_hash'])) -}}
{%- endmacro %}

{#- Pre-hook: the re-read rows with their hash and whether their content changed, then the
    restamp of the unchanged ones. `key`: the staged column holding the raw `id`; `hashed`:
    the raw columns the model parses. -#}
{% macro prepare_restaging(table, key, hashed, required_columns=[]) -%}
    {%- if is_restaging(required_columns) -%}
    {{ replace_temp_table(restaged_rows_table()) }}
    select
        reread.project_id,
        reread.id,
        reread._synced_at,
        reread.built_as_of,
        reread.content_hash,
        staged.{{ key }} is null as is_changed
    from (
        select
            source.project_id,
            source.id,
            source._synced_at,
            source.built_as_of,
            {{ content_hash('source', hashed) }} as content_hash
        from ({{ rows_synced_since_last_build(table, required_columns) }}) as source
    ) as reread
    left join {{ this }} as staged
        on reread.project_id = staged.project_id
        and reread.id = staged.{{ key }}
        and reread.content_hash = staged.content_hash;

    update {{ this }}
    set synced_at = restaged._synced_at, built_as_of = restaged.built_as_of
    from {{ restaged_rows_table() }} as restaged
    where restaged.project_id = {{ this }}.project_id
        and restaged.id = {{ this }}.{{ key }}
        and not restaged.is_changed
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- The raw rows the model parses, with `built_as_of` and `content_hash`: on a full build (or
    an upgrade) every row (rows_synced_since_last_build), else the new and changed ones the
    pre-hook found. -#}
{% macro restaged_rows(table, hashed, required_columns=[]) -%}
    {%- if is_restaging(required_columns) %}
    select raw.*, restaged.built_as_of, restaged.content_hash
    from {{ source('stripe', table) }} as raw
    inner join {{ restaged_rows_table() }} as restaged
        on raw.project_id = restaged.project_id
        and raw.id = restaged.id
    where restaged.is_changed
    {%- else %}
    select
        source.*,
        {{ content_hash('source', hashed) }} as content_hash
    from ({{ rows_synced_since_last_build(table, required_columns) }}) as source
    {%- endif %}
{%- endmacro %}
