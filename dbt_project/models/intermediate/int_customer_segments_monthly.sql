{#-
  Which value of each segment a customer belongs to in each month it had MRR (one row per
  project, customer, month of int_customer_mrr_monthly and segment). Segments are
  customer-level: a customer is in one value of each segment in a month, so the segment
  marts split the month's customers, MRR and movements exactly (the values of a segment sum
  to fct_saas_metrics_monthly's figures) and reuse each customer's movements as they are.
  - plan (product name), price (price nickname, else lookup key, else price id), billing
    interval, currency and `subscription.<key>` (subscription metadata): the value carrying
    the largest share of the customer's MRR (net, USD) on its labelling day, ties by value;
    a customer paying for two plans is counted in the one it pays most for.
  - country (dim_customers) and `customer.<key>` (customer metadata): the customer's own.
  The labelling day is the month's last day while the customer pays then; else its last day
  with MRR in the month; else (MRR until the month opened, none in it) the day before the
  month's first movement day. Values are today's labels (products, prices, metadata are not
  historized); a missing one is '(none)'.
-#}
with customer_months as (
    select * from {{ ref('int_customer_mrr_monthly') }}
),

months as (
    select * from {{ ref('int_reporting_months') }}
),

movements as (
    select * from {{ ref('fct_mrr_movements') }}
),

item_mrr as (
    select * from {{ ref('int_subscription_item_mrr_daily') }}
),

fx_rates as (
    select * from {{ ref('int_fx_rates_daily') }}
),

prices as (
    select * from {{ ref('stg_stripe__prices') }}
),

products as (
    select * from {{ ref('stg_stripe__products') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

metadata as (
    select * from {{ ref('stg_stripe__segment_metadata') }}
),

-- the keys named for each project (only they pass the allowlist): every customer (or
-- subscription) has a value of each, '(none)' when it lacks the key
metadata_keys as (
    select distinct project_id, object_type, metadata_key
    from metadata
),

-- Performance: only customers that churned in the month (few) are looked up day by day
last_mrr_days as (
    select
        movements.project_id,
        movements.customer_id,
        customer_months.metric_month,
        max(movements.metric_date) as last_mrr_date
    from customer_months
    inner join months
        on customer_months.project_id = months.project_id
        and customer_months.metric_month = months.metric_month
    inner join movements
        on customer_months.project_id = movements.project_id
        and customer_months.customer_id = movements.customer_id
        and movements.metric_date between months.first_day and months.last_day
    where customer_months.closing_mrr = 0
        and movements.closing_mrr > 0
    group by movements.project_id, movements.customer_id, customer_months.metric_month
),

labelling_days as (
    select
        customer_months.project_id,
        customer_months.customer_id,
        customer_months.metric_month,
        case
            when customer_months.closing_mrr > 0 then months.last_day
            when last_mrr_days.last_mrr_date is not null then last_mrr_days.last_mrr_date
            else cast({{ dbt.dateadd('day', -1, 'months.first_movement_day') }} as date)
        end as label_date
    from customer_months
    inner join months
        on customer_months.project_id = months.project_id
        and customer_months.metric_month = months.metric_month
    left join last_mrr_days
        on customer_months.project_id = last_mrr_days.project_id
        and customer_months.customer_id = last_mrr_days.customer_id
        and customer_months.metric_month = last_mrr_days.metric_month
),

-- each item's net MRR in USD on its customer's labelling day, as fct_subscription_mrr_daily
-- prices it. Performance: the item-day table is in day order and the labelling days are few
-- (mostly the months' last days): the `in` list lets DuckDB skip every other day's row
-- groups (a join alone read all of them: 3x the time at 20k customers)
labelled_items as (
    select
        labelling_days.project_id,
        labelling_days.customer_id,
        labelling_days.metric_month,
        item_mrr.subscription_id,
        item_mrr.currency,
        {{ to_usd('item_mrr.net_mrr', 'fx_rates.usd_per_unit') }} as net_mrr_usd,
        coalesce(products.product_name, prices.product_id, '(none)') as plan,
        coalesce(prices.nickname, prices.lookup_key, item_mrr.price_id, '(none)') as price,
        case
            when prices.billing_interval is null then '(none)'
            when coalesce(prices.billing_interval_count, 1) = 1 then prices.billing_interval
            else cast(prices.billing_interval_count as {{ dbt.type_string() }})
                || ' ' || prices.billing_interval || 's'
        end as billing_interval
    from labelling_days
    inner join item_mrr
        on labelling_days.project_id = item_mrr.project_id
        and labelling_days.customer_id = item_mrr.customer_id
        and labelling_days.label_date = item_mrr.metric_date
        and item_mrr.metric_date in (
            select distinct labels.label_date from labelling_days as labels
        )
    inner join fx_rates
        on item_mrr.metric_date = fx_rates.metric_date
        and item_mrr.currency = fx_rates.currency
    left join prices
        on item_mrr.project_id = prices.project_id
        and item_mrr.price_id = prices.price_id
    left join products
        on prices.project_id = products.project_id
        and prices.product_id = products.product_id
),

-- the item-level segments as rows: one scan of the items, each row once per segment
segment_names as (
    select 'plan' as segment
    union all
    select 'price' as segment
    union all
    select 'billing_interval' as segment
    union all
    select 'currency' as segment
),

item_segments as (
    select
        labelled_items.project_id,
        labelled_items.customer_id,
        labelled_items.metric_month,
        segment_names.segment,
        case segment_names.segment
            when 'plan' then labelled_items.plan
            when 'price' then labelled_items.price
            when 'billing_interval' then labelled_items.billing_interval
            else labelled_items.currency
        end as segment_value,
        labelled_items.net_mrr_usd
    from labelled_items
    cross join segment_names
    union all
    select
        labelled_items.project_id,
        labelled_items.customer_id,
        labelled_items.metric_month,
        'subscription.' || metadata_keys.metadata_key as segment,
        coalesce(metadata.metadata_value, '(none)') as segment_value,
        labelled_items.net_mrr_usd
    from labelled_items
    {{ named_metadata_joins('labelled_items', 'subscription', 'subscription_id') }}
),

item_segment_totals as (
    select
        project_id,
        customer_id,
        metric_month,
        segment,
        segment_value,
        sum(net_mrr_usd) as mrr
    from item_segments
    group by project_id, customer_id, metric_month, segment, segment_value
),

largest_item_segments as (
    select {{ first_row_of(['project_id', 'customer_id', 'metric_month', 'segment']) }}
        project_id,
        customer_id,
        metric_month,
        segment,
        segment_value
    from item_segment_totals
    {{ first_row_by(['project_id', 'customer_id', 'metric_month', 'segment'],
        'mrr desc, segment_value') }}
),

customer_segments as (
    select
        labelling_days.project_id,
        labelling_days.customer_id,
        labelling_days.metric_month,
        'country' as segment,
        coalesce(customers.country, '(none)') as segment_value
    from labelling_days
    left join customers
        on labelling_days.project_id = customers.project_id
        and labelling_days.customer_id = customers.customer_id
    union all
    select
        labelling_days.project_id,
        labelling_days.customer_id,
        labelling_days.metric_month,
        'customer.' || metadata_keys.metadata_key as segment,
        coalesce(metadata.metadata_value, '(none)') as segment_value
    from labelling_days
    {{ named_metadata_joins('labelling_days', 'customer', 'customer_id') }}
),

final as (
    select * from largest_item_segments
    union all
    select * from customer_segments
)

select * from final
