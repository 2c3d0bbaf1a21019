{#-
  What each subscription item was priced at over time, as segments [valid_from, valid_to)
  (valid_to null: open-ended), each with its monthly amount in the original currency:
  - each subscription invoice line's period, price and quantity (the history: an upgrade
    15 days ago shows the old price before it and the new one after it); a positive proration
    line starts the new price mid-period, a negative one (unused time) ends the old one;
  - before the item's earliest loaded invoice line: that line's price and quantity (the
    nearest evidence: lines older than the backfill window are not loaded, and the current
    listing may reflect later changes); with no line at all, the item as listed; and,
    overriding everything, the item as listed from the moment it was synced;
  - each price or quantity the item was seen with, from the moment
    int_subscription_item_states dates the change (a `customer.subscription.updated` event, else
    the stored subscription versions; issue 14 case 2): a mid-period change starts where it
    happened, not at the sync that saw it, and later syncs do not move it;
  - a removed item (no longer in its subscription's own item list) is worth nothing from the
    moment int_subscription_item_removals dates its removal.
  The day's segment is the one that started last (ties: `priority`).
  Monthly amount (METRICS-SPEC "Monthly amount"): recurring licensed prices only (one-time,
  metered and proration amounts never enter MRR); per-unit: unit_amount x quantity; tiered,
  custom and tax-inclusive prices: the item's subscription invoice line amount excluding
  tax; normalised to a month by the interval: month / n, year / 12n, week x 52 / 12 / n,
  day x 365 / 12 / n, as one exact division rounded to a millionth of the currency unit, half
  away from zero (`per_month`).
-#}
with lines as (
    select * from {{ ref('stg_stripe__invoice_lines') }}
    where subscription_item_id is not null
        and period_started_at is not null
),

items as (
    select * from {{ ref('stg_stripe__subscription_items') }}
),

prices as (
    select * from {{ ref('stg_stripe__prices') }}
),

removals as (
    select * from {{ ref('int_subscription_item_removals') }}
),

-- dated states; `renewal` rows only flag a period, the invoice line is the segment already
item_states as (
    select * from {{ ref('int_subscription_item_states') }}
    where state_source <> 'renewal'
),

latest_regular_lines as (
    select
        project_id,
        subscription_item_id,
        amount_excluding_tax as line_amount
    from lines
    where not is_proration
    qualify row_number() over (
        partition by project_id, subscription_item_id
        order by period_started_at desc, invoice_created_at desc
    ) = 1
),

-- the state before the earliest loaded line: a regular line's, or the old quantity an
-- unused-time proration credit names
earliest_lines as (
    select
        project_id,
        subscription_item_id,
        price_id,
        quantity,
        case when not is_proration then amount_excluding_tax end as line_amount
    from lines
    where not is_proration or amount < 0
    qualify row_number() over (
        partition by project_id, subscription_item_id
        order by period_started_at, is_proration desc, invoice_created_at
    ) = 1
),

line_segments as (
    select
        project_id,
        subscription_id,
        subscription_item_id,
        price_id,
        quantity,
        period_started_at as valid_from,
        period_ended_at as valid_to,
        case
            when not is_proration then 'invoice_line'
            when amount < 0 then 'proration_credit'
            else 'proration'
        end as segment_source,
        case
            when not is_proration then 2
            when amount < 0 then 1
            else 3
        end as priority,
        case when not is_proration then amount_excluding_tax end as own_line_amount
    from lines
),

listed_item_segments as (
    select
        items.project_id,
        items.subscription_id,
        items.subscription_item_id,
        coalesce(earliest_lines.price_id, items.price_id) as price_id,
        case
            when earliest_lines.subscription_item_id is not null then earliest_lines.quantity
            else items.quantity
        end as quantity,
        items.created_at as valid_from,
        cast(null as timestamp) as valid_to,
        'listed_item' as segment_source,
        0 as priority,
        earliest_lines.line_amount as own_line_amount
    from items
    left join earliest_lines
        on items.project_id = earliest_lines.project_id
        and items.subscription_item_id = earliest_lines.subscription_item_id
    union all
    select
        project_id,
        subscription_id,
        subscription_item_id,
        price_id,
        quantity,
        synced_at as valid_from,
        cast(null as timestamp) as valid_to,
        'listed_item_at_sync' as segment_source,
        4 as priority,
        cast(null as {{ money_type() }}) as own_line_amount
    from items
),

-- a removed item is worth nothing from its removal on (int_subscription_item_removals: the
-- item's raw row stays, so neither its listing nor its lines can end it); the highest
-- priority, so that no segment starting at the same instant outlives the removal
removed_item_segments as (
    select
        project_id,
        subscription_id,
        subscription_item_id,
        cast(null as varchar) as price_id,
        0 as quantity,
        removed_at as valid_from,
        cast(null as timestamp) as valid_to,
        'removed_item' as segment_source,
        5 as priority,
        cast(null as {{ money_type() }}) as own_line_amount
    from removals
),

-- a state seen from the moment it began (the latest start wins: a state dated by an event
-- outlives the invoice line of the period it changed)
dated_state_segments as (
    select
        project_id,
        subscription_id,
        subscription_item_id,
        price_id,
        quantity,
        valid_from,
        cast(null as timestamp) as valid_to,
        state_source as segment_source,
        3 as priority,
        cast(null as {{ money_type() }}) as own_line_amount
    from item_states
),

segments as (
    select * from line_segments
    union all
    select * from listed_item_segments
    union all
    select * from dated_state_segments
    union all
    select * from removed_item_segments
),

priced as (
    select
        segments.*,
        coalesce(prices.currency, items.currency) as currency,
        coalesce(prices.unit_amount, items.unit_amount) as unit_amount,
        coalesce(prices.price_type, items.price_type) as price_type,
        coalesce(prices.billing_scheme, items.billing_scheme) as billing_scheme,
        coalesce(prices.usage_type, items.usage_type) as usage_type,
        coalesce(prices.tax_behavior, items.tax_behavior) as tax_behavior,
        coalesce(prices.billing_interval, items.billing_interval) as billing_interval,
        coalesce(prices.billing_interval_count, items.billing_interval_count)
            as billing_interval_count,
        coalesce(segments.own_line_amount, latest_regular_lines.line_amount) as line_amount
    from segments
    left join prices
        on segments.project_id = prices.project_id
        and segments.price_id = prices.price_id
    left join items
        on segments.project_id = items.project_id
        and segments.subscription_item_id = items.subscription_item_id
        and segments.price_id = items.price_id
    left join latest_regular_lines
        on segments.project_id = latest_regular_lines.project_id
        and segments.subscription_item_id = latest_regular_lines.subscription_item_id
),

final as (
    select
        project_id,
        subscription_id,
        subscription_item_id,
        valid_from,
        valid_to,
        segment_source,
        priority,
        price_id,
        quantity,
        currency,
        billing_interval,
        billing_interval_count,
        {%- set units = interval_units('billing_interval', 'billing_interval_count') %}
        {{ units }} as interval_units,
        coalesce(price_type = 'recurring' and coalesce(usage_type, 'licensed') = 'licensed', false)
            as is_recurring_licensed,
        -- money: normalised by one exact division, rounded to a millionth (macros/fx.sql)
        cast(case
            when not coalesce(
                price_type = 'recurring' and coalesce(usage_type, 'licensed') = 'licensed', false
            ) then 0
            when segment_source in ('proration_credit', 'removed_item') then 0
            when billing_scheme = 'per_unit'
                and coalesce(tax_behavior, '') <> 'inclusive'
                and unit_amount is not null
                then {{ per_month('unit_amount * quantity', units) }}
            else {{ per_month('coalesce(line_amount, 0)', units) }}
        end as {{ money_type() }}) as monthly_amount
    from priced
)

select * from final
