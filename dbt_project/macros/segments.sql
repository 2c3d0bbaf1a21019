{#
  The joins that give each row of `rows` one row per metadata key the user named for its object
  type (`metadata_keys`), with that key's value on the row's object where it has one
  (`metadata`): the customer and subscription metadata segments of int_customer_segments_monthly.
#}
{% macro named_metadata_joins(rows, object_type, object_id) %}
    inner join metadata_keys
        on {{ rows }}.project_id = metadata_keys.project_id
        and metadata_keys.object_type = '{{ object_type }}'
    left join metadata
        on {{ rows }}.project_id = metadata.project_id
        and metadata.object_type = '{{ object_type }}'
        and {{ rows }}.{{ object_id }} = metadata.object_id
        and metadata_keys.metadata_key = metadata.metadata_key
{% endmacro %}
