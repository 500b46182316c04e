{#- dbt-clickhouse treats `schema` as the ClickHouse database. Use the configured name as is
    (stg / ods / marts), never dbt's default `<target_schema>_<custom>` concatenation.
    var('db_prefix') (default empty) moves every database of the project, raw sources included,
    to <prefix><name>: the benchmark builds a scratch copy that way. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ var('db_prefix', '') ~ target.schema }}
    {%- else -%}
        {{ var('db_prefix', '') ~ (custom_schema_name | trim) }}
    {%- endif -%}
{%- endmacro %}
