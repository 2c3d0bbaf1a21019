{#-
  Valuing a subscription item from its price (docs/metrics-spec.md "Monthly amount"): what one
  billing interval of `quantity` costs, in minor units of the price point's currency
  (stg_stripe__price_points, aliased `point`), exact to 12 decimals:
  - per unit: unit_amount x quantity; a package price (`transform_quantity`) charges per
    package: quantity / divide_by rounded up or down as `round` says ($10 per 5 seats,
    12 seats: 3 packages, $30);
  - tiered, graduated: each tier's units at its unit amount, plus the flat amount of every
    tier the quantity reaches (12 seats on 1-5 $0 + $49 flat, 6-20 $9: $49 + 7 x $9);
  - tiered, volume: the whole quantity at the unit amount of the tier it falls in, plus that
    tier's flat amount (30 units on up to 50 $6 + $40: 30 x $6 + $40);
  - a quantity of 0 costs nothing; null when the price cannot say (tiers not loaded, no unit
    amount).
-#}
{% macro price_amount_minor(quantity, point) -%}
    {{ return(adapter.dispatch('price_amount_minor', 'stripe_warehouse')(quantity, point)) }}
{%- endmacro %}

{% macro default__price_amount_minor(quantity, point) -%}
    case
        when {{ point }}.billing_scheme = 'tiered' and {{ point }}.tiers_mode = 'volume'
            then coalesce(list_sum(list_transform(
                list_filter({{ point }}.tiers, lambda t: {{ quantity }} > t.floor
                    and (t.up_to is null or {{ quantity }} <= t.up_to)),
                lambda t: {{ quantity }} * t.unit_amount_minor + t.flat_amount_minor)),
                case when {{ point }}.tiers is not null then 0 end)
        when {{ point }}.billing_scheme = 'tiered'
            then coalesce(list_sum(list_transform(
                list_filter({{ point }}.tiers, lambda t: {{ quantity }} > t.floor),
                lambda t: (least({{ quantity }}, coalesce(t.up_to, {{ quantity }})) - t.floor)
                    * t.unit_amount_minor + t.flat_amount_minor)),
                case when {{ point }}.tiers is not null then 0 end)
        when {{ point }}.package_size > 1 and {{ point }}.package_rounding = 'up'
            then {{ point }}.unit_amount_minor
                * (({{ quantity }} + {{ point }}.package_size - 1) // {{ point }}.package_size)
        when {{ point }}.package_size > 1
            then {{ point }}.unit_amount_minor * ({{ quantity }} // {{ point }}.package_size)
        else {{ point }}.unit_amount_minor * {{ quantity }}
    end
{%- endmacro %}

{#-
  A price's (or currency option's) `tiers` JSON array as a list of
  {floor, up_to, unit_amount_minor, flat_amount_minor}; floor is the previous tier's up_to.
  Null when the document has no tiers (not tiered, or not expanded by the request).
-#}
{% macro price_tiers(terms) -%}
    {{ return(adapter.dispatch('price_tiers', 'stripe_warehouse')(terms)) }}
{%- endmacro %}

{% macro default__price_tiers(terms) -%}
    {%- set documents = 'cast(json_extract(' ~ terms ~ ", '$.tiers[*]') as json[])" -%}
    case when json_type({{ terms }}, '$.tiers') = 'ARRAY' then list_transform(
        {{ documents }},
        lambda tier, i: {
            'floor': case when i = 1 then 0 else cast(json_extract_string(
                {{ documents }}[i - 1], '$.up_to') as bigint) end,
            'up_to': cast(json_extract_string(tier, '$.up_to') as bigint),
            'unit_amount_minor': coalesce(
                cast(json_extract_string(tier, '$.unit_amount_decimal') as decimal(38, 12)),
                cast(json_extract_string(tier, '$.unit_amount') as decimal(38, 12)), 0),
            'flat_amount_minor': coalesce(
                cast(json_extract_string(tier, '$.flat_amount_decimal') as decimal(38, 12)),
                cast(json_extract_string(tier, '$.flat_amount') as decimal(38, 12)), 0)
        })
    end
{%- endmacro %}

{#- PostgreSQL: `tiers` is a jsonb array of the same objects; the sums are subqueries over it. -#}
{% macro postgres__price_amount_minor(quantity, point) -%}
    {%- set tier_rows = 'from jsonb_array_elements(' ~ point ~ '.tiers) as tier_row (t)' -%}
    {%- set floor = "(t ->> 'floor')::bigint" -%}
    {%- set up_to = "(t ->> 'up_to')::bigint" -%}
    {%- set unit = "(t ->> 'unit_amount_minor')::decimal(38, 12)" -%}
    {%- set flat = "(t ->> 'flat_amount_minor')::decimal(38, 12)" -%}
    case
        when {{ point }}.billing_scheme = 'tiered' and {{ point }}.tiers_mode = 'volume'
            then coalesce((
                select sum({{ quantity }} * {{ unit }} + {{ flat }})
                {{ tier_rows }}
                where {{ quantity }} > {{ floor }}
                    and ({{ up_to }} is null or {{ quantity }} <= {{ up_to }})),
                case when {{ point }}.tiers is not null then 0 end)
        when {{ point }}.billing_scheme = 'tiered'
            then coalesce((
                select sum((least({{ quantity }}, coalesce({{ up_to }}, {{ quantity }})) - {{ floor }})
                    * {{ unit }} + {{ flat }})
                {{ tier_rows }}
                where {{ quantity }} > {{ floor }}),
                case when {{ point }}.tiers is not null then 0 end)
        when {{ point }}.package_size > 1 and {{ point }}.package_rounding = 'up'
            then {{ point }}.unit_amount_minor
                * (({{ quantity }} + {{ point }}.package_size - 1) / {{ point }}.package_size)
        when {{ point }}.package_size > 1
            then {{ point }}.unit_amount_minor * ({{ quantity }} / {{ point }}.package_size)
        else {{ point }}.unit_amount_minor * {{ quantity }}
    end
{%- endmacro %}

{% macro postgres__price_tiers(terms) -%}
    case when jsonb_typeof(({{ terms }})::jsonb -> 'tiers') = 'array' then (
        select jsonb_agg(jsonb_build_object(
            'floor', case when position = 1 then 0 else previous_up_to end,
            'up_to', up_to,
            'unit_amount_minor', coalesce(
                (tier ->> 'unit_amount_decimal')::decimal(38, 12),
                (tier ->> 'unit_amount')::decimal(38, 12), 0),
            'flat_amount_minor', coalesce(
                (tier ->> 'flat_amount_decimal')::decimal(38, 12),
                (tier ->> 'flat_amount')::decimal(38, 12), 0)
        ) order by position)
        from (
            select
                tier,
                position,
                (tier ->> 'up_to')::bigint as up_to,
                lag((tier ->> 'up_to')::bigint) over (order by position) as previous_up_to
            from jsonb_array_elements(({{ terms }})::jsonb -> 'tiers') with ordinality
                as tiers (tier, position)
        ) as numbered
    ) end
{%- endmacro %}

{#- An exact amount in minor units (12 decimals) in major units, still exact. -#}
{% macro minor_to_major_exact(amount, exponent) -%}
    cast(cast({{ amount }} as decimal(38, 12))
        * cast(power(10, -coalesce({{ exponent }}, 2)) as decimal(38, 12)) as decimal(38, 12))
{%- endmacro %}
