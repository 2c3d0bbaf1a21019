with subscriptions as (
    select * from {{ ref('stg_stripe__subscriptions') }}
),

cancellation_requests as (
    select * from {{ ref('int_subscription_cancellation_requests') }}
),

subscription_mrr as (
    select * from {{ ref('fct_subscription_mrr_daily') }}
),

days as (
    select * from {{ ref('int_reporting_days') }}
    where is_last_day
),

current_mrr as (
    select
        subscription_mrr.project_id,
        subscription_mrr.subscription_id,
        sum(subscription_mrr.gross_mrr) as gross_mrr,
        sum(subscription_mrr.discount_mrr) as discount_mrr,
        sum(subscription_mrr.net_mrr) as net_mrr,
        sum(subscription_mrr.net_mrr_usd) as net_mrr_usd
    from subscription_mrr
    inner join days
        on subscription_mrr.project_id = days.project_id
        and subscription_mrr.metric_date = days.metric_date
    group by subscription_mrr.project_id, subscription_mrr.subscription_id
),

final as (
    select
        subscriptions.project_id,
        subscriptions.subscription_id,
        subscriptions.customer_id,
        subscriptions.status,
        subscriptions.currency,
        subscriptions.created_at,
        subscriptions.started_at,
        subscriptions.trial_started_at,
        subscriptions.trial_ended_at,
        subscriptions.canceled_at,
        subscriptions.is_cancel_at_period_end,
        subscriptions.cancel_at,
        cancellation_requests.cancellation_requested_at,
        coalesce(cancellation_requests.is_requested_at_estimated, false)
            as is_cancellation_requested_at_estimated,
        subscriptions.ended_at,
        subscriptions.pause_collection_behavior,
        current_mrr.subscription_id is not null as is_counted,
        {{ as_money('coalesce(current_mrr.gross_mrr, 0)') }} as current_gross_mrr,
        {{ as_money('coalesce(current_mrr.discount_mrr, 0)') }} as current_discount_mrr,
        {{ as_money('coalesce(current_mrr.net_mrr, 0)') }} as current_net_mrr,
        {{ as_money('coalesce(current_mrr.net_mrr_usd, 0)') }} as current_mrr_usd
    from subscriptions
    left join current_mrr
        on subscriptions.project_id = current_mrr.project_id
        and subscriptions.subscription_id = current_mrr.subscription_id
    left join cancellation_requests
        on subscriptions.project_id = cancellation_requests.project_id
        and subscriptions.subscription_id = cancellation_requests.subscription_id
)

select * from final
