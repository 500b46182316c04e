{#- Shared CDC expressions. ClickHouse-specific SQL goes through adapter.dispatch so another
    adapter could supply its own version. -#}

{#- The raw changelog's metadata columns, renamed for stg models (one block, same everywhere). -#}
{% macro cdc_metadata_columns() -%}
        -- cdc metadata
        _op                     as change_op,
        _version                as change_version,
        _lsn                    as change_lsn,
        toBool(_is_deleted)     as is_deleted,
        _source_ts              as source_committed_at,
        _emitted_ts             as emitted_at,
        _loaded_at              as loaded_at,
        _topic                  as kafka_topic,
        _partition              as kafka_partition,
        _offset                 as kafka_offset
{%- endmacro %}


{#- What one run reads. An orchestrator (bankcdc_ops.dbt_build) sets, in the environment of the
    dbt process, the run's source instant T (BANKCDC_DBT_SOURCE_UPPER_BOUND: every stream of
    every connector has been loaded into raw through that commit time, see
    bankcdc_ops.source_instant) and its load bound U (BANKCDC_DBT_LOADED_UPPER_BOUND: the
    ClickHouse time at which T was chosen). Every model and test of the run reads the changes
    committed by T and loaded by U, so the ODS tables, SCD2 histories and marts of one run
    describe one moment of the source. They are read only while executing, never while parsing,
    so they do not invalidate dbt's partial parse as --vars would. A run without them (dbt by
    hand) reads what was loaded by its start minus var('run_settle_s'), whatever its commit time. -#}
{% macro run_setting(name) -%}
    {%- if execute -%}
        {{- return(env_var('BANKCDC_DBT_' ~ (name | upper), '')) -}}
    {%- endif -%}
    {{- return('') -}}
{%- endmacro %}

{% macro run_upper_bound() -%}
    {%- set explicit = run_setting('loaded_upper_bound') -%}
    {%- if explicit -%}
    toDateTime64('{{ explicit }}', 6, 'UTC')
    {%- else -%}
    (toDateTime64('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}', 6, 'UTC')
     - toIntervalSecond({{ var('run_settle_s') }}))
    {%- endif -%}
{%- endmacro %}

{% macro source_upper_bound() -%}
    {%- set explicit = run_setting('source_upper_bound') -%}
    {%- if explicit -%}
    toDateTime64('{{ explicit }}', 6, 'UTC')
    {%- else -%}
    {{ run_upper_bound() }}
    {%- endif -%}
{%- endmacro %}

{#- The changes a run may read at all: committed by T and loaded by U. -#}
{% macro as_of_run(loaded_col='loaded_at', committed_col='source_committed_at') -%}
    {{ loaded_col }} <= {{ run_upper_bound() }} and {{ committed_col }} <= {{ source_upper_bound() }}
{%- endmacro %}


{#- Incremental models keep their watermark in one small table; the post-hook record_watermark()
    appends to it only after the model's rows are written, so a failed run is simply read again.
    upper_bound is a load time L: every change loaded by L and committed by the run's T has been
    processed. L is U, held back to the earliest change of the window committed after T, so a
    stream that lags the others keeps its rows in the next run's window however long it lags.
    source_upper_bound is the run's T. -#}
{% macro watermark_relation() -%}
    {{ generate_schema_name('ods', none) }}.dbt_watermarks
{%- endmacro %}

{% macro create_watermark_relation() -%}
    create table if not exists {{ watermark_relation() }}{{ on_cluster() }}
    (
        model               String,
        upper_bound         DateTime64(6, 'UTC'),
        source_upper_bound  DateTime64(6, 'UTC'),
        dbt_run_id          String,
        recorded_at         DateTime64(6, 'UTC') default now64(6)
    )
    engine = {{ cluster_engine('MergeTree') }}
    order by (model, upper_bound)
    ttl toDateTime(recorded_at) + interval 30 day
{%- endmacro %}

{#- Watermark tables made before source_upper_bound existed get the column (harmless when present). -#}
{% macro migrate_watermark_relation() -%}
    alter table {{ watermark_relation() }}{{ on_cluster() }}
    add column if not exists source_upper_bound DateTime64(6, 'UTC') after upper_bound
{%- endmacro %}

{% macro record_watermark(stg_models) -%}
    {%- set stg_models = [stg_models] if stg_models is string else stg_models -%}
    insert into {{ watermark_relation() }} (model, upper_bound, source_upper_bound, dbt_run_id)
    select
        '{{ this }}',
        least({{ run_upper_bound() }}
        {%- for stg_model in stg_models %}, ifNull((
            select minOrNull(loaded_at) from {{ ref(stg_model) }}
            where loaded_at <= {{ run_upper_bound() }}
              and source_committed_at > {{ source_upper_bound() }}
              and loaded_at > {{ watermark_lower_bound() }}
        ), {{ run_upper_bound() }})
        {%- endfor %}),
        {{ source_upper_bound() }},
        '{{ invocation_id }}'
{%- endmacro %}

{#- Lower bound of an incremental read: the last watermark minus an overlap (rows whose insert
    committed after the previous run read are picked up again; re-reading is harmless). -#}
{% macro watermark_lower_bound() -%}
    ((select max(upper_bound) from {{ watermark_relation() }} where model = '{{ this }}')
     - toIntervalSecond({{ var('ods_watermark_overlap_s') }}))
{%- endmacro %}

{#- The changes a run processes: loaded in (watermark - overlap, U] and committed by T. On a full
    build, everything the run may read. -#}
{% macro in_this_run(col='loaded_at') -%}
    {{ as_of_run(col) }}
    {%- if is_incremental() %} and {{ col }} > {{ watermark_lower_bound() }}{% endif %}
{%- endmacro %}


{#- Who built a row: the invocation's start time and id. built_at lets the post-hook find this
    run's rows through a minmax index; the id breaks ties between two runs at once. -#}
{% macro build_columns() -%}
    toDateTime64('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}', 6, 'UTC') as built_at,
    '{{ invocation_id }}' as dbt_run_id
{%- endmacro %}

{% macro built_at_index() -%}
    {{ return({'name': 'built_at_idx', 'definition': 'built_at TYPE minmax GRANULARITY 1'}) }}
{%- endmacro %}


{#- (change_version, change_lsn) as one UInt128: the order of changes of one key. -#}
{% macro row_version(version_col='change_version', lsn_col='change_lsn') -%}
    {{ return(adapter.dispatch('row_version', 'bank_cdc')(version_col, lsn_col)) }}
{%- endmacro %}

{% macro clickhouse__row_version(version_col, lsn_col) -%}
    bitShiftLeft(toUInt128({{ version_col }}), 64) + toUInt128({{ lsn_col }})
{%- endmacro %}


{#- Changes of the keys touched in this run, each key's whole history (a lookup by key, which is
    the raw tables' sort key: cheap), so a late-loaded older change can never win over a newer
    one and a delete is never undone. A replayed event (same key, change_version, change_lsn)
    counts once: its first-loaded copy. -#}
{% macro key_history(stg_model, key) -%}
    select * from {{ ref(stg_model) }}
    where {{ as_of_run() }}
    {%- if is_incremental() %}
      and {{ key }} in (select {{ key }} from {{ ref(stg_model) }} where {{ in_this_run() }})
    {%- endif %}
    order by {{ key }}, change_version, change_lsn, loaded_at
    limit 1 by {{ key }}, change_version, change_lsn
{%- endmacro %}


{#- Current state per key: the change with the highest (change_version, change_lsn) among the
    key's history. An incremental run writes only keys whose state is not already in the table
    (the overlap re-reads recent changes; re-writing them would cost a delete for nothing),
    deleted ones as tombstones; the post-hook collapse_to_latest_run() removes what they supersede. -#}
{% macro ods_current_state(stg_model, key) -%}
with

history as (
    {{ key_history(stg_model, key) }}
),

latest as (
    select
        *,
        {{ row_version() }} as row_version
    from history
    order by {{ key }}, change_version desc, change_lsn desc
    limit 1 by {{ key }}
)

select
    *,
    {{ build_columns() }}
from latest
{%- if is_incremental() %}
where ({{ key }}, row_version) not in (
    select {{ key }}, row_version from {{ this }}
    where {{ key }} in (select {{ key }} from latest)
)
  -- a tombstone only for a key the table still holds
  and not (is_deleted and {{ key }} not in (
    select {{ key }} from {{ this }}
    where {{ key }} in (select {{ key }} from latest where is_deleted)
  ))
{%- else %}
where not is_deleted
{%- endif %}
{%- endmacro %}


{#- Post-hook of the ODS models and fraud marts: for the keys this run wrote, keep per key only the winning row,
    the highest (version_col, built_at, dbt_run_id), and, with drop_deleted, nothing when the
    winner is a tombstone. Order-independent, so two runs at once converge: whichever finishes
    last sees both runs' rows and keeps the same winner. A lightweight DELETE restricted by the
    sort key; its predicate reads only fixed-width columns (key, version, built_at). Written as a
    patch part (patch_part_delete), so it costs what it deletes, not what the table holds. -#}
{% macro collapse_to_latest_run(key, version_col='row_version', drop_deleted=true) -%}
    {%- set built_at -%}
        toDateTime64('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}', 6, 'UTC')
    {%- endset -%}
    {%- set mine -%}
        select {{ key }} from {{ this }}
        where built_at = {{ built_at }} and dbt_run_id = '{{ invocation_id }}'
    {%- endset -%}
    delete from {{ this }}
    where {{ key }} in ({{ mine }})
      and ({{ key }}, {{ version_col }}, built_at) not in (
          select {{ key }}, winner.1, winner.2
          from (
              select
                  {{ key }},
                  max(({{ version_col }}, built_at, dbt_run_id)) as winner
                  {%- if drop_deleted %},
                  argMax(is_deleted, ({{ version_col }}, built_at, dbt_run_id)) as winner_is_deleted
                  {%- endif %}
              from {{ this }}
              where {{ key }} in ({{ mine }})
              group by {{ key }}
          )
          {%- if drop_deleted %}
          where not winner_is_deleted
          {%- endif %}
      )
    {{ patch_part_delete() }}
{%- endmacro %}

{#- The settings clause of the project's lightweight DELETEs: written as a patch part, whose cost
    follows the rows deleted, on tables with the block number and offset columns
    (dbt_project.yml); as a mutation over every part on a table created without them. -#}
{% macro patch_part_delete() -%}
    settings lightweight_delete_mode = 'lightweight_update'
{%- endmacro %}


{#- SCD type 2 status history for the keys touched in this run, rebuilt from their whole
    history. Changes are ordered by the source row's updated_at (bank.guard_close never lets it
    go back), then (change_version, change_lsn): a snapshot read (version 0) loaded after
    streamed changes then falls in its real place instead of first. A new interval starts at
    each change whose status differs from the previous change; valid_from is the source row's
    updated_at, valid_to the next interval's valid_from. A hard delete adds a last interval with
    is_deleted = true (valid_from = delete commit time) and no interval of that key is current.
    All intervals of one key from one run share key_row_version (the key's latest change), which
    collapse_to_latest_run() uses to keep exactly one run's intervals per key. -#}
{% macro scd2_status_history(stg_model, key) -%}
with

history as (
    {{ key_history(stg_model, key) }}
),

changes as (
    select
        {{ key }},
        status,
        closed_at,
        updated_at,
        is_deleted,
        source_committed_at,
        change_version,
        change_lsn,
        loaded_at,
        lagInFrame(status, 1, '') over w as previous_status,
        lagInFrame(toUInt8(is_deleted), 1, 0) over w as previous_is_deleted,
        row_number() over w as change_number,
        max(loaded_at) over w as key_loaded_at,
        max({{ row_version() }}) over w as key_row_version
    from history
    window w as (partition by {{ key }} order by updated_at, change_version, change_lsn
                 rows between unbounded preceding and unbounded following)
),

boundaries as (
    -- status changes, plus deletes (which end the last interval)
    select *
    from changes
    where change_number = 1 or status != previous_status or toUInt8(is_deleted) != previous_is_deleted
),

intervals as (
    select
        {{ key }},
        status,
        closed_at,
        is_deleted,
        if(is_deleted, source_committed_at, updated_at) as valid_from,
        change_version,
        change_lsn,
        key_loaded_at,
        key_row_version,
        leadInFrame(toNullable(if(is_deleted, source_committed_at, updated_at))) over w as next_valid_from
    from boundaries
    window w as (partition by {{ key }} order by updated_at, change_version, change_lsn
                 rows between unbounded preceding and unbounded following)
)

select
    concat(toString({{ key }}), ':', toString(change_version), ':', toString(change_lsn)) as status_interval_id,
    {{ key }},
    status,
    closed_at,
    valid_from,
    next_valid_from as valid_to,
    is_deleted,
    next_valid_from is null and not is_deleted as is_current,
    change_version as valid_from_change_version,
    change_lsn as valid_from_change_lsn,
    key_row_version,
    key_loaded_at as loaded_at,
    {{ build_columns() }}
from intervals
{%- if is_incremental() %}
where ({{ key }}, key_row_version) not in (
    select {{ key }}, key_row_version from {{ this }}
    where {{ key }} in (select {{ key }} from intervals)
)
{%- endif %}
{%- endmacro %}


{#- Microseconds since the epoch: exact integer arithmetic for rule windows. -#}
{% macro epoch_us(col) -%}
    {{ return(adapter.dispatch('epoch_us', 'bank_cdc')(col)) }}
{%- endmacro %}

{% macro clickhouse__epoch_us(col) -%}
    toUnixTimestamp64Micro({{ col }})
{%- endmacro %}


{#- Sort evidence arrays by time: groupArray of (created_at, value) tuples, values in time order. -#}
{% macro time_ordered_array(time_col, value_col) -%}
    arrayMap(x -> x.2, arraySort(x -> x.1, groupArray(({{ time_col }}, {{ value_col }}))))
{%- endmacro %}


{#- Boolean flag from a LowCardinality status (plain Bool, not LowCardinality(UInt8), which
    ClickHouse refuses to store by default). -#}
{% macro status_is(value, col='status') -%}
    cast({{ col }} = '{{ value }}' as Bool)
{%- endmacro %}


{#- Read an ODS current-state table as its live rows at any moment, even while a run is between
    its insert and its post-hook: FINAL (ReplacingMergeTree(row_version, is_deleted) keeps the
    highest version and hides tombstones). After a run the table holds exactly these rows. -#}
{% macro live_rows(relation, alias=none) -%}
    {{ return(adapter.dispatch('live_rows', 'bank_cdc')(relation, alias)) }}
{%- endmacro %}

{% macro clickhouse__live_rows(relation, alias) -%}
    (select * from {{ relation }} final where not is_deleted){% if alias %} as {{ alias }}{% endif %}
{%- endmacro %}
