{%- set paths = [
    'invoice', 'invoice.id', 'subscription', 'subscription.id',
    'parent.subscription_item_details.subscription',
    'parent.subscription_item_details.subscription.id',
    'parent.invoice_item_details.subscription', 'parent.invoice_item_details.subscription.id',
    'subscription_item', 'subscription_item.id',
    'parent.subscription_item_details.subscription_item',
    'parent.subscription_item_details.subscription_item.id',
    'price', 'price.id', 'pricing.price_details.price', 'pricing.price_details.price.id',
    'proration', 'parent.subscription_item_details.proration',
    'parent.invoice_item_details.proration', 'type', 'parent.type', 'quantity', 'currency',
    'amount', 'amount_excluding_tax', 'period.start', 'period.end', 'taxes', 'tax_amounts',
    'discounts',
] -%}

{#- sync_all_columns: a table built when money was DOUBLE takes the DECIMAL columns -#}
{{ config(
    materialized='incremental',
    unique_key=['project_id', 'invoice_line_id'],
    incremental_strategy='delete+insert',
    on_schema_change='sync_all_columns',
) }}

with source as (
    {#- a table staged before the tax (or discounts) columns is re-read whole once #}
    {{ rows_synced_since_last_build('invoice_lines', ['inclusive_tax', 'discounts']) }}
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

parsed as {{ parse_once() }}(
    select
        source.*,
        {{ json_fields('data', paths) }} as fields
    from source
),

lines as (
    select
        project_id,
        id as invoice_line_id,
        coalesce(invoice, {{ json_field_id(paths, 'invoice') }}) as invoice_id,
        -- old shape: `subscription`, `subscription_item`, `price`, `proration`, `type`;
        -- since 2025-03-31: `parent.*_details` and `pricing.price_details.price`
        coalesce(
            {{ json_field_id(paths, 'subscription') }},
            {{ json_field_id(paths, 'parent.subscription_item_details.subscription') }},
            {{ json_field_id(paths, 'parent.invoice_item_details.subscription') }}
        ) as subscription_id,
        coalesce(
            {{ json_field_id(paths, 'subscription_item') }},
            {{ json_field_id(paths, 'parent.subscription_item_details.subscription_item') }}
        ) as subscription_item_id,
        coalesce(
            {{ json_field_id(paths, 'price') }},
            {{ json_field_id(paths, 'pricing.price_details.price') }}
        ) as price_id,
        coalesce(
            {{ json_field(paths, 'proration', 'boolean') }},
            {{ json_field(paths, 'parent.subscription_item_details.proration', 'boolean') }},
            {{ json_field(paths, 'parent.invoice_item_details.proration', 'boolean') }},
            false
        ) as is_proration,
        case
            when {{ json_field(paths, 'type') }} = 'subscription'
                or {{ json_field(paths, 'parent.type') }} = 'subscription_item_details'
                then 'subscription'
            else 'invoiceitem'
        end as line_type,
        coalesce({{ json_field(paths, 'quantity', 'bigint') }}, 1) as quantity,
        upper({{ json_field(paths, 'currency') }}) as currency,
        {{ json_field(paths, 'amount', 'bigint') }} as amount_minor,
        -- before 2025-03-31 Stripe reported the amount without tax (and without discounts)
        {{ json_field(paths, 'amount_excluding_tax', 'bigint') }}
            as reported_amount_excluding_tax_minor,
        -- `amount` holds inclusive taxes; exclusive ones are added on top of it
        {%- set taxes = 'coalesce(' ~ json_field(paths, 'taxes') ~ ', '
            ~ json_field(paths, 'tax_amounts') ~ ')' %}
        {{ line_tax_total(taxes, 'inclusive') }} as inclusive_tax_minor,
        {{ line_tax_total(taxes, 'exclusive') }} as exclusive_tax_minor,
        {{ line_tax_total(taxes, 'inclusive', 'taxable_amount', 'max') }}
            as inclusive_taxable_amount_minor,
        -- the item's own discounts on the line (objects where the sync expanded them): a
        -- removed item discount is found there by a later backfill (stg_stripe__discounts)
        {{ json_field(paths, 'discounts', 'json') }} as discounts,
        {{ from_unix_seconds(json_field(paths, 'period.start', 'bigint')) }} as period_started_at,
        {{ from_unix_seconds(json_field(paths, 'period.end', 'bigint')) }} as period_ended_at,
        {{ from_unix_seconds('created') }} as invoice_created_at,
        _synced_at as synced_at,
        built_as_of
    from parsed
),

amounts as (
    select
        lines.*,
        {{ minor_to_major('amount_minor', 'currency_exponents.exponent') }} as amount,
        {{ minor_to_major('reported_amount_excluding_tax_minor', 'currency_exponents.exponent') }}
            as reported_amount_excluding_tax,
        {{ minor_to_major('inclusive_tax_minor', 'currency_exponents.exponent') }}
            as inclusive_tax,
        {{ minor_to_major('exclusive_tax_minor', 'currency_exponents.exponent') }}
            as exclusive_tax,
        {{ minor_to_major('inclusive_taxable_amount_minor', 'currency_exponents.exponent') }}
            as inclusive_taxable_amount
    from lines
    left join currency_exponents on lines.currency = currency_exponents.currency
),

{#
  The line's amount without tax and before discounts (what MRR prices from). Inclusive taxes
  are computed on the discounted amount, so the line's own share is amount x taxable /
  (taxable + tax): 119 with 19% VAT is 100; 119 less a 10% discount pays 107.10 of which
  17.10 VAT (taxable 90): 119 x 90 / 107.10 = 100. Without a discount taxable + tax = amount
  and this is amount - tax, exact.
-#}
final as (
    select
        amounts.*,
        case
            when reported_amount_excluding_tax is not null then reported_amount_excluding_tax
            when inclusive_tax_minor = 0 then amount
            when inclusive_taxable_amount_minor > 0
                and inclusive_taxable_amount_minor + inclusive_tax_minor <> amount_minor
                then {{ divide_money('amount * inclusive_taxable_amount',
                                     'inclusive_taxable_amount + inclusive_tax') }}
            else amount - inclusive_tax
        end as amount_excluding_tax
    from amounts
)

select * from final
