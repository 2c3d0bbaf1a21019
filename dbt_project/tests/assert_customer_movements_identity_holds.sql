{#- The same identity for every customer row of fct_mrr_movements. -#}
select *
from {{ ref('fct_mrr_movements') }}
-- exact: money is DECIMAL, so no tolerance
where opening_mrr + new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr - churn_mrr
    + fx_mrr <> closing_mrr
