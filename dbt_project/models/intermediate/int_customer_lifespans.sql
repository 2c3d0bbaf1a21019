{#-
  When each customer existed (METRICS-SPEC `stripe_customers`): from `created` until deleted.
  Stripe lists no deleted customer, so a customer deleted before the sync is known by:
  - its `customer.deleted` event (the object, with `created`, at the deletion time);
  - without that event (deleted before the 30 days of events): the subscriptions and invoices
    that name it. It existed from the earliest of them (its `created` is no longer readable)
    until its last activity (its last subscription ended or invoice), at the latest the event
    window start: a deletion inside the window would have left an event.
  A customer listed as deleted without that event is taken as deleted at the window start
  (or when first synced, if earlier).
-#}
with customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

deletion_events as (
    select
        project_id,
        object_id as customer_id,
        min(created_at) as deleted_at,
        min(object_created_at) as created_at
    from {{ ref('stg_stripe__events') }}
    where event_type = 'customer.deleted'
    group by project_id, object_id
),

event_windows as (
    select project_id, min(started_at) - interval '30 days' as event_window_starts_at
    from {{ source('stripe', 'sync_runs') }}
    where status = 'succeeded'
    group by project_id
),

-- what the customer's subscriptions and invoices show of its existence
activity as (
    select project_id, customer_id, min(began_at) as first_seen_at, max(ended_at) as last_seen_at
    from (
        select
            project_id,
            customer_id,
            coalesce(started_at, created_at) as began_at,
            coalesce(ended_at, canceled_at, synced_at) as ended_at
        from {{ ref('stg_stripe__subscriptions') }}
        union all
        select
            project_id,
            customer_id,
            created_at as began_at,
            coalesce(paid_at, voided_at, created_at) as ended_at
        from {{ ref('stg_stripe__invoices') }}
    ) as named
    where customer_id is not null
    group by project_id, customer_id
),

listed as (
    select
        customers.project_id,
        customers.customer_id,
        customers.created_at,
        case
            when deletion_events.deleted_at is not null then deletion_events.deleted_at
            when customers.is_deleted then least(
                customers.synced_at,
                coalesce(event_windows.event_window_starts_at, customers.synced_at)
            )
        end as deleted_at
    from customers
    left join deletion_events
        on customers.project_id = deletion_events.project_id
        and customers.customer_id = deletion_events.customer_id
    left join event_windows
        on customers.project_id = event_windows.project_id
    where customers.created_at is not null
),

unlisted as (
    select
        coalesce(activity.project_id, deletion_events.project_id) as project_id,
        coalesce(activity.customer_id, deletion_events.customer_id) as customer_id,
        coalesce(deletion_events.created_at, activity.first_seen_at) as created_at,
        coalesce(
            deletion_events.deleted_at,
            least(activity.last_seen_at, event_windows.event_window_starts_at)
        ) as deleted_at
    from activity
    full outer join deletion_events
        on activity.project_id = deletion_events.project_id
        and activity.customer_id = deletion_events.customer_id
    left join event_windows
        on coalesce(activity.project_id, deletion_events.project_id) = event_windows.project_id
    where not exists (
        select 1 from customers
        where customers.project_id = coalesce(activity.project_id, deletion_events.project_id)
            and customers.customer_id = coalesce(activity.customer_id, deletion_events.customer_id)
    )
),

final as (
    select * from listed
    union all
    select * from unlisted
)

select * from final
