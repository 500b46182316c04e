{#- What one run's data tests read: what that run changed, so a test costs what the new data
    costs (issue: tests that cost what the new data costs). dbt wraps the tested relation of every
    generic test in get_where_subquery(); this project's version adds, after the test's own
    `where` config, the run's scope (macros/cdc.sql settings, read while executing):

      * an incremental model (ODS, fraud marts): the rows this run wrote (built_at and
        dbt_run_id; built_at has a minmax index); a `unique` test reads every row of the keys
        this run wrote, so a key held twice is found wherever the other copy is;
      * a staging view or a raw source: the changes loaded since the previous build's load
        bound (minus the watermark overlap), up to this run's;
      * anything else (the masked views): the whole relation.

    BANKCDC_DBT_TEST_SCOPE=full (the dbt_test_suite DAG), a run with no previous build, or dbt by
    hand test everything. -#}
{% macro get_where_subquery(relation) -%}
    {%- set filters = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}{%- do filters.append('(' ~ where ~ ')') -%}{%- endif -%}
    {%- set scope = run_test_scope(relation) -%}
    {%- if scope -%}{%- do filters.append('(' ~ scope ~ ')') -%}{%- endif -%}
    {%- if filters -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ filters | join(' and ') ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{% macro run_test_scope(relation) -%}
    {%- if not execute or run_setting('test_scope') != 'run' -%}{{ return('') }}{%- endif -%}
    {%- set tested = graph.nodes.get(model.attached_node) or graph.sources.get(model.attached_node) -%}
    {%- if tested is none -%}{{ return('') }}{%- endif -%}
    {%- if tested.resource_type == 'model' and tested.config.materialized == 'incremental' -%}
        {%- set written -%}
            built_at = toDateTime64('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}', 6, 'UTC')
            and dbt_run_id = '{{ invocation_id }}'
        {%- endset -%}
        {%- set column = (model.test_metadata or {}).get('kwargs', {}).get('column_name') -%}
        {%- if model.test_metadata and model.test_metadata.name == 'unique' and column -%}
            {{ return(column ~ ' in (select ' ~ column ~ ' from ' ~ relation ~ ' where ' ~ written ~ ')') }}
        {%- endif -%}
        {{ return(written) }}
    {%- endif -%}
    {%- set previous = run_setting('previous_loaded_upper_bound') -%}
    {%- set loaded_col = '_loaded_at' if tested.resource_type == 'source' else 'loaded_at' -%}
    {%- set is_staging = tested.resource_type == 'source'
                         or (tested.resource_type == 'model' and tested.config.materialized == 'view'
                             and 'staging' in tested.fqn) -%}
    {%- if is_staging and previous -%}
        {{ return(loaded_col ~ " > toDateTime64('" ~ previous ~ "', 6, 'UTC') - toIntervalSecond("
                  ~ var('ods_watermark_overlap_s') ~ ") and " ~ loaded_col ~ " <= " ~ run_upper_bound()) }}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}
