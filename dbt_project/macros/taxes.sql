{#-
  The taxes of an invoice line (issue 15 case 2), summed in the line's minor unit. Stripe
  reports them as `taxes[]` since 2025-03-31 (`amount`, `taxable_amount`, `tax_behavior`
  inclusive|exclusive, `tax_rate_details`) and as `tax_amounts[]` before (`amount`,
  `taxable_amount`, `inclusive` true|false); a line carries one of the two. `taxes_json` is
  that array as JSON text (extracted with the line's other fields, in one pass over the
  document), `field` is `amount` or `taxable_amount`, `aggregate` `sum` or `max`; 0 when the
  line has no such tax. Most lines have none: the array is parsed only when it is not empty.
-#}
{% macro line_tax_total(taxes_json, behavior, field='amount', aggregate='sum') -%}
    {{ return(adapter.dispatch('line_tax_total', 'stripe_warehouse')(
        taxes_json, behavior, field, aggregate)) }}
{%- endmacro %}

{% macro default__line_tax_total(taxes_json, behavior, field, aggregate) -%}
    case
        when {{ taxes_json }} is null or {{ taxes_json }} = '[]' then 0
        else coalesce(list_{{ aggregate }}(list_transform(
            cast({{ taxes_json }} as json[]),
            lambda tax: case
                when coalesce(
                    tax->>'tax_behavior' = 'inclusive', cast(tax->>'inclusive' as boolean), false
                ) = {{ 'true' if behavior == 'inclusive' else 'false' }}
                    then cast(tax->>'{{ field }}' as bigint)
            end
        )), 0)
    end
{%- endmacro %}

{% macro postgres__line_tax_total(taxes_json, behavior, field, aggregate) -%}
    case
        when {{ taxes_json }} is null or {{ taxes_json }} = '[]' then 0
        else coalesce((
            select {{ aggregate }}(case
                when coalesce(
                    tax->>'tax_behavior' = 'inclusive', cast(tax->>'inclusive' as boolean), false
                ) = {{ 'true' if behavior == 'inclusive' else 'false' }}
                    then cast(tax->>'{{ field }}' as bigint)
            end)
            from jsonb_array_elements(cast({{ taxes_json }} as jsonb)) as line_tax (tax)
        ), 0)
    end
{%- endmacro %}
