{#-
  The refunds each credit note made: `refunds[]` (API 2025-03-31 and later: `refund` and
  `amount_refunded`; a refund of a payment recorded off Stripe has no refund id and is left
  out), or `refund` (one id, older API versions).
-#}
with credit_notes as (
    {#- as stg_stripe__credit_notes: no table before the first sync that read credit notes -#}
    select project_id, id, data from ({{ optional_source('credit_notes') }}) as credit_note_rows
),

listed as (
    select
        project_id,
        id as credit_note_id,
        {{ json_array_elements('data', 'refunds') }} as refund
    from credit_notes
),

final as (
    select
        project_id,
        credit_note_id,
        {{ json_id('refund', 'refund') }} as refund_id
    from listed
    where {{ json_type_of('refund') }} = 'OBJECT'
    union
    select
        project_id,
        id as credit_note_id,
        {{ json_id('data', 'refund') }} as refund_id
    from credit_notes
    where {{ json_id('data', 'refund') }} is not null
)

select * from final
where refund_id is not null
