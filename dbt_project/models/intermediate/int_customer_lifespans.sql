{#-
  When each customer existed (METRICS-SPEC `stripe_customers`): from `created` until deleted.
  The deletion time is the `customer.deleted` event's; a customer seen deleted without that
  event (older than Stripe's 30 days of events) is taken as deleted when first synced deleted.
-#}
with customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

deletion_events as (
    select project_id, object_id as customer_id, min(created_at) as deleted_at
    from {{ ref('stg_stripe__events') }}
    where event_type = 'customer.deleted'
    group by project_id, object_id
),

final as (
    select
        customers.project_id,
        customers.customer_id,
        customers.created_at,
        case
            when customers.is_deleted or deletion_events.deleted_at is not null
                then coalesce(deletion_events.deleted_at, customers.synced_at)
        end as deleted_at
    from customers
    left join deletion_events
        on customers.project_id = deletion_events.project_id
        and customers.customer_id = deletion_events.customer_id
    where customers.created_at is not null
)

select * from final
