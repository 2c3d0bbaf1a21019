{#-
  Per project and month:
  opening + new + expansion + reactivation - contraction - churn + fx = closing.
-#}
select *
from {{ ref('fct_mrr_movements_monthly') }}
-- exact: money is DECIMAL, so no tolerance
where opening_mrr + new_mrr + expansion_mrr + reactivation_mrr - contraction_mrr - churn_mrr
    + fx_mrr <> closing_mrr
