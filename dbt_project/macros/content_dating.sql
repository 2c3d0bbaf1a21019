{#-
  An observation is dated when its content was first observed (docs/metrics-spec.md
  "Dating the current listing"): a subscription re-listed with the content it already had
  keeps the time of the first sync (or webhook) that saw that content, not the latest sync's;
  only a changed subscription gets the new time. Re-seeing a state adds no information, and
  dating it at the latest sync would make history depend on how often we sync (and make every
  refresh rewrite every subscription's history).

  The first sighting of each content is the insert-only `subscription_versions` table (a
  version seen again keeps its first `observed_at`). So the listed subscription is dated at
  the `observed_at` of its latest version when it has that version's content, compared without
  the fields that change without the subscription's state changing
  (pipelines/source.py VOLATILE_SUBSCRIPTION_FIELDS: a renewal's new `latest_invoice`). It is
  a function of the raw rows, so a full build and any sequence of incremental builds give the
  same date. Otherwise (no version stored, or a return to an older content: its version keeps
  the first time it was ever seen, before the content in between) the listing is dated at its
  sync, as before: `content_observed_at` is null and readers fall back to `synced_at`.
-#}

{#- The raw subscription `data` without its volatile fields, comparable across rows. -#}
{% macro stable_subscription_content(column) -%}
    {{ return(adapter.dispatch('stable_subscription_content', 'stripe_warehouse')(column)) }}
{%- endmacro %}

{% macro default__stable_subscription_content(column) -%}
    cast(json_merge_patch(
        {{ column }}, '{"latest_invoice": null, "next_pending_invoice_item_invoice": null}'
    ) as varchar)
{%- endmacro %}

{% macro postgres__stable_subscription_content(column) -%}
    (({{ column }})::jsonb - 'latest_invoice' - 'next_pending_invoice_item_invoice')
{%- endmacro %}

{#- A raw JSON column's text as stored. -#}
{% macro json_as_text(column) -%}
    {{ return(adapter.dispatch('json_as_text', 'stripe_warehouse')(column)) }}
{%- endmacro %}

{% macro default__json_as_text(column) -%}
    cast({{ column }} as varchar)
{%- endmacro %}

{% macro postgres__json_as_text(column) -%}
    cast({{ column }} as text)
{%- endmacro %}

{#- Joins the latest stored version of each raw subscription row `alias` (project_id, id), as
    `latest_versions` (observed_at, data). -#}
{% macro latest_version_join(alias) -%}
    left join (
        select {{ first_row_of(['project_id', 'id']) }}
            project_id, id, observed_at, data
        from {{ source('stripe', 'subscription_versions') }}
        {{ first_row_by(['project_id', 'id'], 'observed_at desc, version_hash desc') }}
    ) as latest_versions
        on {{ alias }}.project_id = latest_versions.project_id
        and {{ alias }}.id = latest_versions.id
{%- endmacro %}

{#- When the content of raw subscription row `alias` was first observed (with
    latest_version_join), or null: then its sync time dates it. -#}
{% macro content_observed_at(alias) -%}
    case
        -- Performance: the same text first (usually), the comparison without the volatile
        -- fields (a JSON rewrite of both documents) only where it differs
        when {{ json_as_text('latest_versions.data') }} = {{ json_as_text(alias ~ '.data') }}
            then latest_versions.observed_at
        when {{ stable_subscription_content('latest_versions.data') }}
            = {{ stable_subscription_content(alias ~ '.data') }}
            then latest_versions.observed_at
    end
{%- endmacro %}
