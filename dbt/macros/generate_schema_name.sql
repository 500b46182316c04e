{#- dbt-clickhouse treats `schema` as the ClickHouse database. Use the configured name as is
    (stg / ods / marts), never dbt's default `<target_schema>_<custom>` concatenation. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
