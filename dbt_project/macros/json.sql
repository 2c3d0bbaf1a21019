{#-
  JSON access in one place, so models stay free of dialect-specific functions.
  `path` is a dotted path inside the JSON document, e.g. 'parent.subscription_details.subscription'.
-#}
{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch('json_text', 'stripe_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_text(column, path) -%}
    json_extract_string({{ column }}, '$.{{ path }}')
{%- endmacro %}

{#- A typed scalar: json_value(data, 'amount', 'bigint'). -#}
{% macro json_value(column, path, type) -%}
    cast({{ json_text(column, path) }} as {{ type }})
{%- endmacro %}

{#- A nested JSON document (object or array) at `path`. -#}
{% macro json_object(column, path) -%}
    {{ return(adapter.dispatch('json_object', 'stripe_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_object(column, path) -%}
    json_extract({{ column }}, '$.{{ path }}')
{%- endmacro %}

{#-
  The id of a field Stripe renders either as an id string or as an expanded object
  (`price`, `coupon`, `subscription`, ...): works for both shapes. Without `path`, the value
  of `column` itself (an element of a list of discounts, say).
-#}
{% macro json_id(column, path=none) -%}
    {{ return(adapter.dispatch('json_id', 'stripe_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_id(column, path=none) -%}
    {%- set at = '$.' ~ path if path else '$' %}
    case
        when json_type({{ column }}, '{{ at }}') = 'OBJECT'
            then json_extract_string({{ column }}, '{{ at }}.id')
        else json_extract_string({{ column }}, '{{ at }}')
    end
{%- endmacro %}

{#- Unnests the elements of the JSON array at `path` as one JSON value per row. -#}
{% macro json_array_elements(column, path) -%}
    {{ return(adapter.dispatch('json_array_elements', 'stripe_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_array_elements(column, path) -%}
    unnest(coalesce(json_extract({{ column }}, '$.{{ path }}[*]'), []::json[]))
{%- endmacro %}

{#- Unnests a column holding a JSON array as one JSON value per row (none for null/empty). -#}
{% macro json_array_items(column) -%}
    {{ return(adapter.dispatch('json_array_items', 'stripe_warehouse')(column)) }}
{%- endmacro %}

{% macro default__json_array_items(column) -%}
    unnest(coalesce(json_extract({{ column }}, '$[*]'), []::json[]))
{%- endmacro %}

{#- True when the JSON object has the key (even with a null value): previous_attributes. -#}
{% macro json_has_key(column, path) -%}
    {{ return(adapter.dispatch('json_has_key', 'stripe_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_has_key(column, path) -%}
    coalesce(json_exists({{ column }}, '$.{{ path }}'), false)
{%- endmacro %}

{#-
  Many fields of one JSON document, parsed once: `json_fields('data', paths)` yields a list of
  texts (one per path, in order); `json_field(paths, 'a.b', 'bigint')` reads one of them from
  the `fields` column. For paths Stripe renders as an id or an expanded object, list both
  `x` and `x.id` and read them with `json_field_id(paths, 'x')`.
-#}
{% macro json_fields(column, paths) -%}
    {{ return(adapter.dispatch('json_fields', 'stripe_warehouse')(column, paths)) }}
{%- endmacro %}

{% macro default__json_fields(column, paths) -%}
    json_extract_string({{ column }}, [{% for path in paths %}'$.{{ path }}'{{ ", " if not loop.last }}{% endfor %}])
{%- endmacro %}

{% macro json_field(paths, path, type=none, fields_column='fields') -%}
    {%- if path not in paths -%}
        {{ exceptions.raise_compiler_error("json_field: '" ~ path ~ "' is not in the model's paths") }}
    {%- endif -%}
    {%- set element = fields_column ~ '[' ~ (paths.index(path) + 1) ~ ']' -%}
    {%- if type -%}cast({{ element }} as {{ type }}){%- else -%}{{ element }}{%- endif -%}
{%- endmacro %}

{#- An object's `.id` when expanded, else the id string itself. -#}
{% macro json_field_id(paths, path, fields_column='fields') -%}
    coalesce(
        {{ json_field(paths, path ~ '.id', fields_column=fields_column) }},
        {{ json_field(paths, path, fields_column=fields_column) }}
    )
{%- endmacro %}

{#- A term of the coupon of the discount in `column` where the coupon is expanded: under
    `source.coupon` (since 2025-09-30) or `coupon` (before); null where it is only an id. -#}
{% macro coupon_term(column, term) -%}
    case
        when json_type({{ column }}, '$.source.coupon') = 'OBJECT'
            then {{ json_text(column, 'source.coupon.' ~ term) }}
        when json_type({{ column }}, '$.coupon') = 'OBJECT'
            then {{ json_text(column, 'coupon.' ~ term) }}
    end
{%- endmacro %}

{#- The `id`s of the objects in the JSON array at `path` (''/none: the column itself), as a list
    of texts ([] when absent). -#}
{% macro json_array_ids(column, path) -%}
    {{ return(adapter.dispatch('json_array_ids', 'stripe_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_array_ids(column, path) -%}
    {%- set prefix = '$.' ~ path if path else '$' %}
    coalesce(json_extract_string({{ column }}, '{{ prefix }}[*].id'), []::varchar[])
{%- endmacro %}

{#- One row per discount of each row of `relation`: the elements of the `list_column` array
    (`discounts`, current API) and the `single_column` value of older API versions
    (`discount`), each as `discount`, beside the `columns` kept (a comma-separated list). -#}
{% macro discounts_as_rows(relation, columns, list_column, single_column) -%}
    select {{ columns }}, {{ json_array_items(list_column) }} as discount
    from {{ relation }}
    union all
    select {{ columns }}, {{ single_column }} as discount
    from {{ relation }}
    where json_type({{ single_column }}) in ('OBJECT', 'VARCHAR')
{%- endmacro %}

{#- The keys of the JSON object at `path` (a list; null when there is none). -#}
{% macro json_object_keys(column, path) -%}
    {{ return(adapter.dispatch('json_object_keys', 'stripe_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_object_keys(column, path) -%}
    json_keys({{ column }}, '$.{{ path }}')
{%- endmacro %}
