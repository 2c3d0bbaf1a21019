{#- The same identity for every customer row of fct_mrr_movements. -#}
select *
from {{ ref('fct_mrr_movements') }}
where abs(
    opening_mrr + new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr - churn_mrr
    + fx_mrr - closing_mrr
) > 0.01
