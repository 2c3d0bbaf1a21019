{#-
  Incremental rebuild by project and subscription, for the subscription history models whose
  rows of a subscription are a function of that subscription's staged rows (and of per-project
  facts that only a full refresh changes, such as the event window). A build rewrites only the
  subscriptions with a staged row, in one of the model's `inputs`, stamped by a build after
  the model's last one (the input's `built_as_of` later than the model's own, per project):
  a refresh costs in proportion to what it loaded, not to how many subscriptions exist.
  The inputs must be staged models whose rows are restaged only when their load read them
  again (events, invoice lines, versions): not the re-listed subscriptions, whose restamp
  moves every row's `built_as_of` on every sync.

  Per project (docs/metrics-spec.md "Late rows of one tenant"): each project is compared with
  its own stamp, so one tenant's late rows are rebuilt whatever another's sync did. A project
  the model has no row of is rebuilt whole (every subscription of it counts as changed).
  The set is fixed once, before anything is deleted, in a temporary table named after the
  model. A table built before it had `built_as_of` is rewritten whole, once. The retention
  job's full refresh rebuilds every subscription.
-#}
{% macro changed_subscriptions_table() -%}
    {{ this.identifier }}__changed_subscriptions
{%- endmacro %}

{#- (a dbt unit test has no `this`: it builds from its fixtures, whole) -#}
{% macro is_incremental_by_subscription() -%}
    {{- return(this is not none and is_incremental() and has_columns(this, ['built_as_of'])) -}}
{%- endmacro %}

{#- Pre-hook: the subscriptions to rebuild, then the delete of their rows (of every row when
    the table lacks `built_as_of`). `inputs`: model names (with subscription_id), or
    {'model': ..., 'subscription_id': <its column naming the subscription>, 'where': ...}. -#}
{% macro prepare_changed_subscriptions(inputs) -%}
    {%- if is_incremental_by_subscription() -%}
    {{ replace_temp_table(changed_subscriptions_table()) }}
    select distinct staged.project_id, staged.subscription_id
    from (
        {%- for input in inputs %}
        {%- set spec = input if input is mapping else {'model': input} %}
        select project_id, {{ spec.get('subscription_id', 'subscription_id') }} as subscription_id,
            built_as_of
        from {{ ref(spec['model']) }}
        {%- if spec.get('where') %}
        where {{ spec['where'] }}
        {%- endif %}
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    ) as staged
    left join (
        select project_id, max(built_as_of) as built_as_of from {{ this }} group by project_id
    ) as built
        on staged.project_id = built.project_id
    where staged.subscription_id is not null
        and (built.built_as_of is null or staged.built_as_of > built.built_as_of);

    delete from {{ this }}
    where exists (
        select 1
        from {{ changed_subscriptions_table() }} as changed
        where changed.project_id = {{ this }}.project_id
            and changed.subscription_id = {{ this }}.subscription_id
    )
    {%- elif is_incremental() -%}
    delete from {{ this }}
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- Keeps the rows of `relation_alias` (with project_id and `column` naming the subscription)
    of the subscriptions this build rewrites. -#}
{% macro only_changed_subscriptions(relation_alias, column='subscription_id') -%}
    {%- if is_incremental_by_subscription() -%}
    inner join {{ changed_subscriptions_table() }} as changed_subscriptions
        on {{ relation_alias }}.project_id = changed_subscriptions.project_id
        and {{ relation_alias }}.{{ column }} = changed_subscriptions.subscription_id
    {%- endif -%}
{%- endmacro %}
