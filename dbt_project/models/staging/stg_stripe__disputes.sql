{#-
  Disputes (chargebacks). A dispute's money leaves the balance when it opens (one balance
  transaction: the amount and Stripe's dispute fee) and comes back only if it is won; the
  revenue models deduct a lost one when it closes (int_revenue_transactions).
-#}
with source as (
    {#- a warehouse last synced by an older release has no disputes table until its next sync -#}
    {{ optional_source('disputes') }}
),

currency_exponents as (
    select * from {{ ref('currency_exponents') }}
),

withdrawal_fees as (
    -- the fees of the balance transactions that took money out (a won dispute's
    -- reinstatement gives them back with a negative fee)
    select
        project_id,
        id as dispute_id,
        sum(case when {{ json_value('balance_transaction', 'amount', 'bigint') }} < 0
            then {{ json_value('balance_transaction', 'fee', 'bigint') }} else 0 end)
            as fee_minor
    from (
        select project_id, id, {{ json_array_elements('data', 'balance_transactions') }}
            as balance_transaction
        from source
    ) as balance_transactions
    group by project_id, id
),

disputes as (
    select
        source.project_id,
        source.id as dispute_id,
        {{ json_id('data', 'charge') }} as charge_id,
        {{ json_text('data', 'status') }} as status,
        {{ json_text('data', 'reason') }} as reason,
        upper({{ json_text('data', 'currency') }}) as currency,
        {{ json_value('data', 'amount', 'bigint') }} as amount_minor,
        coalesce(withdrawal_fees.fee_minor, 0) as fee_minor,
        {{ from_unix_seconds('source.created') }} as created_at,
        {{ from_unix_seconds(json_value('data', 'evidence_details.due_by', 'bigint')) }}
            as evidence_due_by
    from source
    left join withdrawal_fees
        on source.project_id = withdrawal_fees.project_id
        and source.id = withdrawal_fees.dispute_id
),

final as (
    select
        disputes.*,
        {{ minor_to_major('amount_minor', 'currency_exponents.exponent') }} as amount,
        {{ minor_to_major('fee_minor', 'currency_exponents.exponent') }} as fee
    from disputes
    left join currency_exponents on disputes.currency = currency_exponents.currency
)

select * from final
