{#- Shared by the models that date subscription changes from Stripe's events. -#}

{#- The subscription events (`customer.subscription.*`) of stg_stripe__events. -#}
{% macro subscription_events() -%}
    select * from {{ ref('stg_stripe__events') }}
    where object_type = 'subscription'
        and event_type like 'customer.subscription.%'
{%- endmacro %}

{#- Per project, the start of the event window: Stripe keeps events 30 days, so before the
    first successful sync's start minus 30 days none were read. -#}
{% macro event_window_starts() -%}
    select project_id, min(started_at) - interval '30 days' as event_window_starts_at
    from {{ source('stripe', 'sync_runs') }}
    where status = 'succeeded'
    group by project_id
{%- endmacro %}
