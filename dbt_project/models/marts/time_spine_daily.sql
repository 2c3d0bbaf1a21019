{#-
  One row per calendar day from 2010 (Stripe's launch: no account has older data) to the end
  of 2040: the time spine MetricFlow joins time-based metrics to (_semantic_layer.yml). A
  static table of 11,323 rows; nothing else reads it.
-#}
with days as (
    {{ dbt.date_spine('day', "cast('2010-01-01' as date)", "cast('2041-01-01' as date)") }}
),

final as (
    select cast(date_day as date) as date_day
    from days
)

select * from final
