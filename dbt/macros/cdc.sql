{#- Shared CDC expressions. The ClickHouse-specific SQL goes through adapter.dispatch so another
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


{#- One row per change: the raw tables are ReplacingMergeTree ORDER BY (key, _version, _lsn), so
    FINAL collapses replayed copies of the same event (same key, _version, _lsn) exactly. -#}
{% macro dedup_changes(relation) -%}
    {{ return(adapter.dispatch('dedup_changes', 'bank_cdc')(relation)) }}
{%- endmacro %}

{% macro default__dedup_changes(relation) -%}
    {{ exceptions.raise_compiler_error('dedup_changes is implemented for ClickHouse only') }}
{%- endmacro %}

{% macro clickhouse__dedup_changes(relation) -%}
    {{ relation }} final
{%- endmacro %}


{#- Keep the latest change per key: highest (change_version, change_lsn), never wall-clock time. -#}
{% macro latest_change_per(key) -%}
    {{ return(adapter.dispatch('latest_change_per', 'bank_cdc')(key)) }}
{%- endmacro %}

{% macro clickhouse__latest_change_per(key) -%}
    order by {{ key }}, change_version desc, change_lsn desc
    limit 1 by {{ key }}
{%- endmacro %}


{#- (change_version, change_lsn) as one UInt128, the ReplacingMergeTree version of ODS tables:
    a duplicate row left by two concurrent runs collapses to the newest change on merge/FINAL. -#}
{% macro row_version(version_col='change_version', lsn_col='change_lsn') -%}
    {{ return(adapter.dispatch('row_version', 'bank_cdc')(version_col, lsn_col)) }}
{%- endmacro %}

{% macro clickhouse__row_version(version_col, lsn_col) -%}
    bitShiftLeft(toUInt128({{ version_col }}), 64) + toUInt128({{ lsn_col }})
{%- endmacro %}


{#- Read an ODS table as its current rows: FINAL (collapse any duplicate a concurrent run left),
    deleted keys (tombstones) removed. -#}
{% macro live_rows(relation, alias=none) -%}
    {{ return(adapter.dispatch('live_rows', 'bank_cdc')(relation, alias)) }}
{%- endmacro %}

{% macro clickhouse__live_rows(relation, alias) -%}
    (select * from {{ relation }} final where not is_deleted){% if alias %} as {{ alias }}{% endif %}
{%- endmacro %}


{#- Incremental filter on loaded_at: everything loaded after the target's watermark, minus an
    overlap for inserts that were in flight when the previous run read (see ods docstrings). -#}
{% macro changes_since_watermark(watermark_col='loaded_at') -%}
    {%- if is_incremental() %}
    where {{ watermark_col }} > (
        select max({{ watermark_col }}) - toIntervalSecond({{ var('ods_watermark_overlap_s') }})
        from {{ this }}
    )
    {%- endif %}
{%- endmacro %}


{#- Current state per key from a stg changelog model, incrementally:
      1. changes loaded since the watermark;
      2. plus the row already in ODS for each touched key, so a replayed or late-loaded older
         change can never replace a newer state;
      3. keep the highest (change_version, change_lsn) per key.
    Deletes stay as tombstones (is_deleted = true) so an older change loaded later cannot
    resurrect a deleted key. Cost: the new changes plus a key lookup in ODS (ORDER BY key). -#}
{% macro ods_current_state(stg_model, key) -%}
with

changes as (
    select * from {{ ref(stg_model) }}
    {{ changes_since_watermark() }}
),

candidates as (
    select * from changes
    {%- if is_incremental() %}
    union all
    select * except (row_version)
    from {{ this }} final
    where {{ key }} in (select {{ key }} from changes)
    {%- endif %}
),

latest as (
    select * from candidates
    {{ latest_change_per(key) }}
)

select
    *,
    {{ row_version() }} as row_version
from latest
{%- endmacro %}


{#- SCD type 2 status history for the keys touched since the watermark, rebuilt from their whole
    stg changelog (delete+insert on the key replaces the key's history). Changes are ordered by
    the source row's updated_at (bank.guard_close never lets it go back), then
    (change_version, change_lsn): a snapshot read (version 0) loaded after streamed changes then
    falls in its real place instead of first. A new interval starts
    at each change whose status differs from the previous change; valid_from is the source
    row's updated_at (snapshot rows carry the time of their last update), valid_to the next
    interval's valid_from, or the delete's commit time. A hard delete adds a last interval with
    is_deleted = true (status = the before image, valid_from = delete commit time) and no
    interval of that key is current; keeping it as a row is what lets delete+insert replace
    the key's history (a key with no rows would keep its old intervals). -#}
{% macro scd2_status_history(stg_model, key) -%}
with

touched as (
    select distinct {{ key }} from {{ ref(stg_model) }}
    {{ changes_since_watermark() }}
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
        max(loaded_at) over w as key_loaded_at
    from {{ ref(stg_model) }}
    {%- if is_incremental() %}
    where {{ key }} in (select {{ key }} from touched)
    {%- endif %}
    window w as (partition by {{ key }} order by updated_at, change_version, change_lsn
                 rows between unbounded preceding and unbounded following)
),

boundaries as (
    -- status changes, plus deletes (which end the last interval)
    select *
    from changes
    where change_number = 1 or status != previous_status or is_deleted != toBool(previous_is_deleted)
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
        leadInFrame(toNullable(if(is_deleted, source_committed_at, updated_at))) over w as next_valid_from
    from boundaries
    window w as (partition by {{ key }} order by updated_at, change_version, change_lsn
                 rows between unbounded preceding and unbounded following)
)

select
    {{ key }},
    status,
    closed_at,
    valid_from,
    next_valid_from as valid_to,
    is_deleted,
    next_valid_from is null and not is_deleted as is_current,
    change_version as valid_from_change_version,
    change_lsn as valid_from_change_lsn,
    concat(toString({{ key }}), ':', toString(change_version), ':', toString(change_lsn)) as status_interval_id,
    key_loaded_at as loaded_at
from intervals
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
