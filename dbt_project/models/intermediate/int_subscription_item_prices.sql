{#-
  What each subscription item was priced at over time, as segments [valid_from, valid_to)
  (valid_to null: open-ended), each with its monthly amount in the original currency:
  - each subscription invoice line's period, price and quantity (the history: an upgrade
    15 days ago shows the old price before it and the new one after it); a positive proration
    line starts the new price mid-period, a negative one (unused time) ends the old one;
  - before the item's earliest loaded invoice line: that line's price and quantity (the
    nearest evidence: lines older than the backfill window are not loaded, and the current
    listing may reflect later changes); with no line at all, the item as listed; and,
    overriding everything, the item as listed from the moment its listed content was first
    observed (docs/metrics-spec.md "Dating the current listing");
  - each price or quantity the item was seen with, from the moment
    int_subscription_item_states dates the change (a `customer.subscription.updated` event, else
    the stored subscription versions; issue 14 case 2): a mid-period change starts where it
    happened, not at the sync that saw it, and later syncs do not move it;
  - a removed item (no longer in its subscription's own item list) is worth nothing from the
    moment int_subscription_item_removals dates its removal.
  The day's segment is the one that started last (ties: `priority`).
  Monthly amount (METRICS-SPEC "Monthly amount"): recurring licensed prices only (one-time,
  metered and proration amounts never enter MRR), valued from the price at the segment's
  quantity (macros/price_valuation.sql: per unit, package, graduated and volume tiers) in the
  subscription's currency: the price's currency option for it when the price has one
  (stg_stripe__price_points), so an INR subscription on a USD price is valued in INR. Only
  where the price cannot say (its tiers were never loaded, no unit amount): the item's
  subscription invoice line amount excluding tax, flagged `is_valued_from_invoice_line`.
  Normalised to a month by the interval: month / n, year / 12n, week x 52 / 12 / n,
  day x 365 / 12 / n, as one exact division rounded to a millionth of the currency unit, half
  away from zero (`per_month`).
  Tax never enters MRR (issue 15 case 2). Exclusive tax is added on top of the price, so the
  price's amount holds none. A tax-inclusive item (price or currency option `tax_behavior`
  inclusive, or its line carrying inclusive tax, as tax rates with `inclusive` make it) is
  worth, in order of evidence (`tax_source`):
  1. `own_line`: its segment's invoice line amount excluding tax (exact);
  2. `latest_line`: the item's latest regular line's, when that line bills the same price
     and quantity (exact: the same thing invoiced again);
  3. `latest_line_rate`: the price's amount / (1 + the latest line's inclusive tax /
     taxable amount), rounded to a millionth (estimated: the rate may have changed since);
  4. `no_tax_evidence`: the price's amount (estimated: no line says what tax it holds).
  3 and 4 set `is_tax_estimated`, which int_subscription_item_mrr_daily carries into
  `is_estimated`.
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

subscriptions as (
    select project_id, subscription_id, currency from {{ ref('stg_stripe__subscriptions') }}
),

item_lists as (
    select * from {{ ref('stg_stripe__subscription_item_lists') }}
),

price_points as (
    select * from {{ ref('stg_stripe__price_points') }}
),

priced_prices as (
    select distinct project_id, price_id from price_points
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

-- dated states; `renewal` rows only flag a period, the invoice line is the segment already
item_states as (
    select * from {{ ref('int_subscription_item_states') }}
    where state_source <> 'renewal'
),

latest_regular_lines as (
    select {{ first_row_of(['project_id', 'subscription_item_id']) }}
        project_id,
        subscription_item_id,
        price_id as line_price_id,
        quantity as line_quantity,
        amount_excluding_tax as line_amount,
        inclusive_tax as line_inclusive_tax,
        inclusive_taxable_amount as line_inclusive_taxable_amount,
        -- inclusive taxes per unit of taxable amount (0.19 for 19% VAT), to 6 decimals: once
        -- per item here, not per segment (DECIMAL division is costly)
        {{ divide_money('inclusive_tax', 'nullif(inclusive_taxable_amount, 0)') }}
            as line_inclusive_tax_rate
    from lines
    where not is_proration
    {{ first_row_by(['project_id', 'subscription_item_id'],
        'period_started_at desc, invoice_created_at desc') }}
),

-- the state before the earliest loaded line: a regular line's, or the old quantity an
-- unused-time proration credit names
earliest_lines as (
    select {{ first_row_of(['project_id', 'subscription_item_id']) }}
        project_id,
        subscription_item_id,
        price_id,
        quantity,
        case when not is_proration then amount_excluding_tax end as line_amount,
        case when not is_proration then inclusive_tax end as line_inclusive_tax
    from lines
    where not is_proration or amount < 0
    {{ first_row_by(['project_id', 'subscription_item_id'],
        'period_started_at asc, is_proration desc, invoice_created_at asc') }}
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
        case when not is_proration then amount_excluding_tax end as own_line_amount,
        case when not is_proration then inclusive_tax end as own_line_inclusive_tax
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
        earliest_lines.line_amount as own_line_amount,
        earliest_lines.line_inclusive_tax as own_line_inclusive_tax
    from items
    left join earliest_lines
        on items.project_id = earliest_lines.project_id
        and items.subscription_item_id = earliest_lines.subscription_item_id
    union all
    select
        items.project_id,
        items.subscription_id,
        items.subscription_item_id,
        items.price_id,
        items.quantity,
        -- a listed item is dated when its subscription's content (which embeds it) was first
        -- observed (macros/content_dating.sql); an item no longer listed at its last listing
        coalesce(
            case when {{ list_has('item_lists.item_ids', 'items.subscription_item_id') }}
                then item_lists.content_observed_at end,
            items.synced_at
        ) as valid_from,
        cast(null as timestamp) as valid_to,
        'listed_item_at_sync' as segment_source,
        4 as priority,
        cast(null as {{ money_type() }}) as own_line_amount,
        cast(null as {{ money_type() }}) as own_line_inclusive_tax
    from items
    left join item_lists
        on items.project_id = item_lists.project_id
        and items.subscription_id = item_lists.subscription_id
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
        cast(null as {{ money_type() }}) as own_line_amount,
        cast(null as {{ money_type() }}) as own_line_inclusive_tax
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
        cast(null as {{ money_type() }}) as own_line_amount,
        cast(null as {{ money_type() }}) as own_line_inclusive_tax
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
        -- the subscription is billed in its currency: the price's option for it, if any
        coalesce(price_points.currency, subscriptions.currency, prices.currency, items.currency)
            as currency,
        -- one billing interval of the segment's quantity, from the price (null: it cannot say)
        {{ minor_to_major_exact(price_amount_minor('segments.quantity', 'price_points'),
                                'currency_exponents.exponent') }} as price_amount,
        price_points.tax_behavior as point_tax_behavior,
        priced_prices.price_id is not null as has_price_points,
        coalesce(prices.unit_amount, items.unit_amount) as unit_amount,
        coalesce(prices.price_type, items.price_type) as price_type,
        coalesce(prices.billing_scheme, items.billing_scheme) as billing_scheme,
        coalesce(prices.usage_type, items.usage_type) as usage_type,
        coalesce(prices.tax_behavior, items.tax_behavior) as tax_behavior,
        coalesce(prices.billing_interval, items.billing_interval) as billing_interval,
        coalesce(prices.billing_interval_count, items.billing_interval_count)
            as billing_interval_count,
        coalesce(segments.own_line_amount, latest_regular_lines.line_amount) as line_amount,
        case
            when segments.own_line_amount is not null then 'own_line'
            when latest_regular_lines.line_price_id = segments.price_id
                and latest_regular_lines.line_quantity = segments.quantity then 'latest_line'
            when latest_regular_lines.line_inclusive_taxable_amount > 0 then 'latest_line_rate'
            else 'no_tax_evidence'
        end as tax_source,
        latest_regular_lines.line_inclusive_tax_rate as latest_inclusive_tax_rate,
        coalesce(segments.own_line_inclusive_tax, latest_regular_lines.line_inclusive_tax, 0) > 0
            as line_holds_inclusive_tax
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
    left join subscriptions
        on segments.project_id = subscriptions.project_id
        and segments.subscription_id = subscriptions.subscription_id
    left join price_points
        on segments.project_id = price_points.project_id
        and segments.price_id = price_points.price_id
        and price_points.currency = coalesce(subscriptions.currency, prices.currency)
    left join currency_exponents
        on price_points.currency = currency_exponents.currency
    left join priced_prices
        on segments.project_id = priced_prices.project_id
        and segments.price_id = priced_prices.price_id
),

valued as (
    select
        priced.*,
        coalesce(
            price_type = 'recurring' and coalesce(usage_type, 'licensed') = 'licensed', false
        ) as is_recurring_licensed,
        -- the price (or its currency option) includes tax, or its line holds inclusive tax
        coalesce(point_tax_behavior, tax_behavior, '') = 'inclusive' or line_holds_inclusive_tax
            as is_tax_inclusive,
        -- what the price says one interval of the quantity costs (tax included when
        -- inclusive): its valuation, or, for a price staged without its points (not listed),
        -- its per-unit terms or the item's own copy of them; null: the price cannot say
        case
            when price_amount is not null then price_amount
            when not has_price_points and billing_scheme = 'per_unit' and unit_amount is not null
                then unit_amount * quantity
        end as list_amount
    from priced
),

-- what one billing interval is worth before normalising (`interval_amount`; null when the
-- segment is worth nothing: 0 per month), with the segment's flags
interval_amounts as (
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
        {{ interval_units('billing_interval', 'billing_interval_count') }} as interval_units,
        is_recurring_licensed,
        case when is_tax_inclusive then tax_source end as tax_source,
        -- only where an amount was estimated: metered, one-time and zeroed segments are 0
        coalesce(is_tax_inclusive and list_amount is not null
            and tax_source in ('latest_line_rate', 'no_tax_evidence')
            and price_type = 'recurring' and coalesce(usage_type, 'licensed') = 'licensed'
            and segment_source not in ('proration_credit', 'removed_item'), false)
            as is_tax_estimated,
        case
            when not is_recurring_licensed then null
            when segment_source in ('proration_credit', 'removed_item') then null
            -- tax never enters MRR: an inclusive price's amount without its tax (tax_source)
            when is_tax_inclusive and tax_source in ('own_line', 'latest_line') then line_amount
            when is_tax_inclusive and tax_source = 'latest_line_rate' and list_amount is not null
                then {{ divide_money('list_amount', '1 + latest_inclusive_tax_rate') }}
            when list_amount is not null then list_amount
            else coalesce(line_amount, 0)
        end as interval_amount,
        coalesce(is_recurring_licensed
            and segment_source not in ('proration_credit', 'removed_item'), false)
            as is_worth_something,
        -- the price cannot say what it charges (e.g. tiers never loaded): the latest invoice
        -- line's amount stands in for it
        coalesce(is_recurring_licensed
            and segment_source not in ('proration_credit', 'removed_item')
            and list_amount is null
            and not (is_tax_inclusive and tax_source in ('own_line', 'latest_line')), false)
            as is_valued_from_invoice_line
    from valued
),

-- Performance: money normalised once per distinct amount and interval (a few hundred), not
-- per segment: DuckDB's exact DECIMAL(38) arithmetic in `per_month` cost most of the model
monthly_amounts as (
    select
        interval_amount,
        interval_units,
        {{ per_month('interval_amount', 'interval_units') }} as monthly_amount
    from (
        select distinct
            interval_amount,
            interval_units
        from interval_amounts
        where is_worth_something
    ) as distinct_amounts
),

final as (
    select
        interval_amounts.project_id,
        interval_amounts.subscription_id,
        interval_amounts.subscription_item_id,
        interval_amounts.valid_from,
        interval_amounts.valid_to,
        interval_amounts.segment_source,
        interval_amounts.priority,
        interval_amounts.price_id,
        interval_amounts.quantity,
        interval_amounts.currency,
        interval_amounts.billing_interval,
        interval_amounts.billing_interval_count,
        interval_amounts.interval_units,
        interval_amounts.is_recurring_licensed,
        interval_amounts.tax_source,
        interval_amounts.is_tax_estimated,
        -- money: normalised by one exact division, rounded to a millionth (macros/fx.sql)
        cast(case
            when not interval_amounts.is_worth_something then 0
            else monthly_amounts.monthly_amount
        end as {{ money_type() }}) as monthly_amount,
        interval_amounts.is_valued_from_invoice_line
    from interval_amounts
    left join monthly_amounts
        on interval_amounts.is_worth_something
        and interval_amounts.interval_amount is not distinct from monthly_amounts.interval_amount
        and interval_amounts.interval_units is not distinct from monthly_amounts.interval_units
)

select * from final
