{#- One row per customer: no personal data beyond the email (privacy allowlist). -#}
with customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

lifespans as (
    select * from {{ ref('int_customer_lifespans') }}
),

invoices as (
    select * from {{ ref('stg_stripe__invoices') }}
),

subscription_mrr as (
    select * from {{ ref('fct_subscription_mrr_daily') }}
),

days as (
    select * from {{ ref('int_reporting_days') }}
    where is_last_day
),

-- the day of the project's reporting time zone of the customer's first paid invoice
first_paid as (
    select
        invoices.project_id,
        invoices.customer_id,
        {{ local_date('min(coalesce(invoices.paid_at, invoices.finalized_at, invoices.created_at))',
            "coalesce(max(days.reporting_time_zone), 'UTC')") }} as first_paid_date
    from invoices
    left join days
        on invoices.project_id = days.project_id
    where invoices.is_paid and invoices.amount_paid_minor > 0
    group by invoices.project_id, invoices.customer_id
),

current_mrr as (
    select
        subscription_mrr.project_id,
        subscription_mrr.customer_id,
        sum(subscription_mrr.net_mrr_usd) as current_mrr,
        max(case when subscription_mrr.status = 'past_due' then 1 else 0 end) = 1
            as has_past_due_subscription
    from subscription_mrr
    inner join days
        on subscription_mrr.project_id = days.project_id
        and subscription_mrr.metric_date = days.metric_date
    group by subscription_mrr.project_id, subscription_mrr.customer_id
),

final as (
    select
        customers.project_id,
        customers.customer_id,
        customers.email,
        customers.currency,
        customers.country,
        customers.created_at,
        lifespans.deleted_at,
        first_paid.first_paid_date,
        {{ as_money('coalesce(current_mrr.current_mrr, 0)') }} as current_mrr,
        case
            when customers.is_deleted then 'deleted'
            when current_mrr.has_past_due_subscription then 'past_due'
            when coalesce(current_mrr.current_mrr, 0) > 0 then 'paying'
            when current_mrr.customer_id is not null then 'active_free'
            when first_paid.first_paid_date is not null then 'churned'
            else 'never_paid'
        end as status
    from customers
    left join lifespans
        on customers.project_id = lifespans.project_id
        and customers.customer_id = lifespans.customer_id
    left join first_paid
        on customers.project_id = first_paid.project_id
        and customers.customer_id = first_paid.customer_id
    left join current_mrr
        on customers.project_id = current_mrr.project_id
        and customers.customer_id = current_mrr.customer_id
)

select * from final
