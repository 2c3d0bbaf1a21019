{#-
  JSON access in one place, so models stay free of dialect-specific functions.
  `path` is a dotted path inside the JSON document, e.g. 'parent.subscription_details.subscription'.
-#}
{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch('json_text', 'stripe_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_text(column, path) -%}
    json_extract_string({{ column }}, '{{ '$.' ~ path if path else '$' }}')
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

{#-
  The CTE that holds `json_fields(...) as fields`: `parsed as {{ parse_once() }}(`. PostgreSQL
  inlines a CTE read once, and then evaluates the parsing subquery again for every
  `fields[i]` the next CTE reads (44 times per invoice): stg_stripe__invoices of 10 bench
  projects (12,042 invoices) ran for over 6 minutes, 12 s materialized. DuckDB: as it was.
-#}
{% macro parse_once() -%}
    {{ return(adapter.dispatch('parse_once', 'stripe_warehouse')()) }}
{%- endmacro %}

{% macro default__parse_once() -%}{%- endmacro %}

{% macro postgres__parse_once() -%}materialized {% endmacro %}

{% macro default__json_fields(column, paths) -%}
    json_extract_string({{ column }}, [{% for path in paths %}'$.{{ path }}'{{ ", " if not loop.last }}{% endfor %}])
{%- endmacro %}

{% macro json_field(paths, path, type=none, fields_column='fields') -%}
    {%- if path not in paths -%}
        {{ exceptions.raise_compiler_error("json_field: '" ~ path ~ "' is not in the model's paths") }}
    {%- endif -%}
    {%- set element = fields_column ~ '[' ~ (paths.index(path) + 1) ~ ']' -%}
    {%- if type == 'json' -%}{{ as_json(element) }}
    {%- elif type -%}cast({{ element }} as {{ type }}){%- else -%}{{ element }}{%- endif -%}
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
        when {{ json_type_of(column, 'source.coupon') }} = 'OBJECT'
            then {{ json_text(column, 'source.coupon.' ~ term) }}
        when {{ json_type_of(column, 'coupon') }} = 'OBJECT'
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
    where {{ json_type_of(single_column) }} in ('OBJECT', 'VARCHAR')
{%- endmacro %}

{#- The keys of the JSON object at `path` (a list; null when there is none). -#}
{% macro json_object_keys(column, path) -%}
    {{ return(adapter.dispatch('json_object_keys', 'stripe_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_object_keys(column, path) -%}
    json_keys({{ column }}, '$.{{ path }}')
{%- endmacro %}

{#- The text of the JSON object's member whose name is the SQL expression `key` (a column). -#}
{% macro json_text_of_key(column, key) -%}
    {{ return(adapter.dispatch('json_text_of_key', 'stripe_warehouse')(column, key)) }}
{%- endmacro %}

{% macro default__json_text_of_key(column, key) -%}
    json_extract_string({{ column }}, '$."' || replace({{ key }}, '"', '\"') || '"')
{%- endmacro %}

{#- ---- PostgreSQL ---------------------------------------------------------------------------
  The raw `data` column is text there (pipelines/load.py) and every JSON value jsonb: each
  macro casts its column (a no-op on jsonb). A dotted path with [n] indexes becomes a
  PostgreSQL path array: 'items.data[0].id' -> '{items,data,0,id}'.
-#}
{% macro pg_json_path(path) -%}
    ('{ {{- (path or '') | replace('[', '.') | replace(']', '') | replace('.', ',') -}} }')::text[]
{%- endmacro %}

{% macro postgres__json_text_of_key(column, key) -%}
    (({{ column }})::jsonb ->> {{ key }})
{%- endmacro %}

{% macro postgres__json_text(column, path) -%}
    (({{ column }})::jsonb #>> {{ pg_json_path(path) }})
{%- endmacro %}

{% macro postgres__json_object(column, path) -%}
    (({{ column }})::jsonb #> {{ pg_json_path(path) }})
{%- endmacro %}

{% macro postgres__json_id(column, path=none) -%}
    {%- set value = '((' ~ column ~ ')::jsonb #> ' ~ pg_json_path(path) ~ ')' %}
    case
        when jsonb_typeof({{ value }}) = 'object' then {{ value }} ->> 'id'
        else {{ value }} #>> '{}'
    end
{%- endmacro %}

{#- jsonb_array_elements fails on a non-array: absent, null and scalars give no rows. -#}
{% macro pg_json_array_or_empty(value) -%}
    case when jsonb_typeof({{ value }}) = 'array' then {{ value }} else '[]'::jsonb end
{%- endmacro %}

{% macro postgres__json_array_elements(column, path) -%}
    jsonb_array_elements({{ pg_json_array_or_empty(postgres__json_object(column, path)) }})
{%- endmacro %}

{% macro postgres__json_array_items(column) -%}
    jsonb_array_elements({{ pg_json_array_or_empty('(' ~ column ~ ')::jsonb') }})
{%- endmacro %}

{% macro postgres__json_has_key(column, path) -%}
    {%- set parts = path.split('.') %}
    coalesce(
        ({{ postgres__json_object(column, parts[:-1] | join('.')) }}) ? '{{ parts[-1] }}', false)
{%- endmacro %}

{#- The document is parsed once for all the paths (a scalar subquery): PostgreSQL inlines the
    model's CTEs, so every `fields[n]` a model reads is this whole expression again; with one
    `::jsonb` cast per path, a line's ~40 reads parsed its JSON ~1,200 times (stg_stripe__
    invoice_lines: 90 s for 701 rows on a first build). -#}
{% macro postgres__json_fields(column, paths) -%}
    (select array[{% for path in paths %}document #>> {{ pg_json_path(path) }}{{ ", " if not loop.last }}{% endfor %}]::text[]
     from (select ({{ column }})::jsonb as document) as parsed_document)
{%- endmacro %}

{% macro postgres__json_array_ids(column, path) -%}
    array(
        select element.value ->> 'id'
        from jsonb_array_elements(
            {{ pg_json_array_or_empty(postgres__json_object(column, path)) }}
        ) with ordinality as element (value, position)
        order by element.position
    )::text[]
{%- endmacro %}

{% macro postgres__json_object_keys(column, path) -%}
    case when jsonb_typeof({{ postgres__json_object(column, path) }}) = 'object' then array(
        select jsonb_object_keys({{ postgres__json_object(column, path) }})
    )::text[] end
{%- endmacro %}

{#- The JSON type of the value at `path` (none: the column itself) in DuckDB's names:
    'OBJECT', 'ARRAY', 'VARCHAR', 'BOOLEAN', 'NULL', numbers 'BIGINT'/'DOUBLE' (DuckDB
    tells UBIGINT too; the models only compare with OBJECT, ARRAY and VARCHAR). -#}
{% macro json_type_of(column, path=none) -%}
    {{ return(adapter.dispatch('json_type_of', 'stripe_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_type_of(column, path=none) -%}
    {%- if path is none -%}json_type({{ column }}){%- else -%}json_type({{ column }}, '$.{{ path }}'){%- endif -%}
{%- endmacro %}

{% macro postgres__json_type_of(column, path=none) -%}
    case jsonb_typeof({{ postgres__json_object(column, path) if path is not none else '(' ~ column ~ ')::jsonb' }})
        when 'object' then 'OBJECT' when 'array' then 'ARRAY' when 'string' then 'VARCHAR'
        when 'boolean' then 'BOOLEAN' when 'null' then 'NULL'
        when 'number' then 'DOUBLE'
    end
{%- endmacro %}

{#- A raw JSON document as the dialect's JSON value: DuckDB's JSON column as it is, PostgreSQL's
    text as jsonb (where it meets values the other macros extracted, e.g. in a union). -#}
{% macro json_document(column) -%}
    {{ return(adapter.dispatch('json_document', 'stripe_warehouse')(column)) }}
{%- endmacro %}

{% macro default__json_document(column) -%}
    {{ column }}
{%- endmacro %}

{% macro postgres__json_document(column) -%}
    ({{ column }})::jsonb
{%- endmacro %}

{#- A null of the dialect's JSON type (DuckDB json, PostgreSQL jsonb). -#}
{% macro json_null() -%}
    {{ return(adapter.dispatch('json_null', 'stripe_warehouse')()) }}
{%- endmacro %}

{% macro default__json_null() -%}
    cast(null as json)
{%- endmacro %}

{% macro postgres__json_null() -%}
    cast(null as jsonb)
{%- endmacro %}

{#- The length of the JSON array in `column` (at `path`); null when it is not an array. -#}
{% macro json_array_length_of(column, path=none) -%}
    {{ return(adapter.dispatch('json_array_length_of', 'stripe_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_array_length_of(column, path=none) -%}
    {%- if path is none -%}json_array_length({{ column }}){%- else -%}json_array_length({{ column }}, '$.{{ path }}'){%- endif -%}
{%- endmacro %}

{% macro postgres__json_array_length_of(column, path=none) -%}
    {%- set value = postgres__json_object(column, path) if path is not none else '(' ~ column ~ ')::jsonb' -%}
    case when jsonb_typeof({{ value }}) = 'array' then jsonb_array_length({{ value }}) end
{%- endmacro %}

{#- ---- lists (DuckDB lists, PostgreSQL arrays) ------------------------------------------- -#}
{#- The number of elements of a list. -#}
{% macro list_length(list) -%}
    {{ return(adapter.dispatch('list_length', 'stripe_warehouse')(list)) }}
{%- endmacro %}

{% macro default__list_length(list) -%}
    len({{ list }})
{%- endmacro %}

{% macro postgres__list_length(list) -%}
    cardinality({{ list }})
{%- endmacro %}

{#- Whether `list` holds `value` (false, not null, when it does not; null for a null list). -#}
{% macro list_has(list, value) -%}
    {{ return(adapter.dispatch('list_has', 'stripe_warehouse')(list, value)) }}
{%- endmacro %}

{% macro default__list_has(list, value) -%}
    list_contains({{ list }}, {{ value }})
{%- endmacro %}

{% macro postgres__list_has(list, value) -%}
    (case when {{ list }} is not null then coalesce({{ value }} = any({{ list }}), false) end)
{%- endmacro %}

{#- The elements of `list` that `other` does not hold, in order. -#}
{% macro list_without(list, other) -%}
    {{ return(adapter.dispatch('list_without', 'stripe_warehouse')(list, other)) }}
{%- endmacro %}

{% macro default__list_without(list, other) -%}
    list_filter({{ list }}, lambda id: not list_contains({{ other }}, id))
{%- endmacro %}

{% macro postgres__list_without(list, other) -%}
    array(
        select element.value
        from unnest({{ list }}) with ordinality as element (value, position)
        where not coalesce(element.value = any({{ other }}), false)
        order by element.position
    )
{%- endmacro %}

{#- The ids in the JSON array at `path`, whose elements are ids or expanded objects (a list of
    texts, [] when absent): what is kept on an object after a change, to test with list_has.
    DuckDB's list also holds the objects' own texts, which never equal an id. -#}
{% macro json_id_list(column, path) -%}
    {{ return(adapter.dispatch('json_id_list', 'stripe_warehouse')(column, path)) }}
{%- endmacro %}

{% macro default__json_id_list(column, path) -%}
    coalesce(json_extract_string({{ column }}, '$.{{ path }}[*]'), [])
        || coalesce(json_extract_string({{ column }}, '$.{{ path }}[*].id'), [])
{%- endmacro %}

{% macro postgres__json_id_list(column, path) -%}
    array(
        select case
            when jsonb_typeof(element.value) = 'object' then element.value ->> 'id'
            else element.value #>> '{}'
        end
        from jsonb_array_elements(
            {{ pg_json_array_or_empty(postgres__json_object(column, path)) }}
        ) as element (value)
    )::text[]
{%- endmacro %}

{#- A list of the given SQL expressions, cast to `type[]` on PostgreSQL when given. -#}
{% macro list_of(items, type=none) -%}
    {{ return(adapter.dispatch('list_of', 'stripe_warehouse')(items, type)) }}
{%- endmacro %}

{% macro default__list_of(items, type=none) -%}
    [{{ items | join(',\n            ') }}]
{%- endmacro %}

{% macro postgres__list_of(items, type=none) -%}
    array[{{ items | join(', ') }}]{{ '::' ~ type ~ '[]' if type else '' }}
{%- endmacro %}

{#- `expression` (JSON text) as the dialect's JSON type (DuckDB json, PostgreSQL jsonb). -#}
{% macro as_json(expression) -%}
    {{ return(adapter.dispatch('as_json', 'stripe_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__as_json(expression) -%}
    cast({{ expression }} as json)
{%- endmacro %}

{% macro postgres__as_json(expression) -%}
    cast({{ expression }} as jsonb)
{%- endmacro %}
