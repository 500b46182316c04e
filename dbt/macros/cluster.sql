{#- One server or a replicated cluster, from the same models: the profile's `cluster`
    (CLICKHOUSE_CLUSTER, empty for one server) decides. On a cluster dbt-clickhouse puts its own
    DDL ON CLUSTER; these macros do the same for the project's own statements and make each
    model's MergeTree-family engine Replicated with the server's macros, the path and name that
    bankcdc_stack.clickhouse_ddl gives the raw tables (REPLICA_PATH, REPLICA_NAME). -#}

{% macro cluster_engine(engine) -%}
    {%- if not (target.get('cluster') or '') | trim -%}
        {{ engine }}
    {%- else -%}
        {%- set parsed = modules.re.match('^(\\w*)MergeTree(?:\\((.*)\\))?$', engine | trim) -%}
        {%- if parsed is none -%}
            {{ exceptions.raise_compiler_error("cluster_engine: " ~ engine ~ " is not a MergeTree-family engine") }}
        {%- endif -%}
        {%- set arguments = ["'/clickhouse/tables/{uuid}/{shard}'", "'{replica}'"] -%}
        {%- if parsed.group(2) | trim -%}
            {%- do arguments.append(parsed.group(2) | trim) -%}
        {%- endif -%}
        Replicated{{ parsed.group(1) }}MergeTree({{ arguments | join(', ') }})
    {%- endif -%}
{%- endmacro %}

{% macro on_cluster() -%}
    {%- set cluster = adapter.get_clickhouse_cluster_name() -%}
    {%- if cluster %} on cluster {{ cluster }}{% endif -%}
{%- endmacro %}
