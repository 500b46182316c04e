{#- Scope of an incremental fraud-mart run. The rules are local in time (windows of at most
    var('probing_window_s') seconds), so a run recomputes only detections near the transactions
    that changed in this run: it reads ODS transactions created within
    [first change - 2 * margin, last change + margin] (ods_transactions has a minmax index on
    created_at) and replaces detections ending after first change - margin. A full build reads
    everything. -#}
{% macro fraud_scope() -%}
    select
        changed_from - toIntervalSecond({{ 2 * var('fraud_scope_margin_s') }}) as read_from,
        changed_to + toIntervalSecond({{ var('fraud_scope_margin_s') }}) as read_to,
        changed_from - toIntervalSecond({{ var('fraud_scope_margin_s') }}) as detect_from
    from (
        select min(created_at) as changed_from, max(created_at) as changed_to
        from {{ ref('stg_transactions') }}
        where {{ in_this_run() }}
    )
{%- endmacro %}

{#- ODS transactions in the scope (all of them on a full build). -#}
{% macro transactions_in_scope(where='true') -%}
    select * from {{ ref('ods_transactions') }}
    where {{ where }}
    {%- if is_incremental() %}
      and created_at between (select read_from from scope) and (select read_to from scope)
    {%- endif %}
{%- endmacro %}

{#- Detections of this run: those ending inside the scope (all on a full build). -#}
{% macro detections_in_scope(window_end_col='window_end') -%}
    {%- if is_incremental() %}
    where {{ window_end_col }} >= (select detect_from from scope)
    {%- endif %}
{%- endmacro %}

{#- Post-hook of the marts whose cases can grow backwards (rapid withdrawals, amount probing): a
    row whose window lies inside another row's window of the same card is an older version of
    that case (late data extended it backwards). -#}
{% macro drop_contained_windows() -%}
    delete from {{ this }}
    where detection_id in (
        select inner_row.detection_id
        from {{ this }} as inner_row
        inner join {{ this }} as outer_row on inner_row.card_id = outer_row.card_id
        where inner_row.detection_id != outer_row.detection_id
          and inner_row.window_start >= outer_row.window_start
          and inner_row.window_end <= outer_row.window_end
    )
    {{ patch_part_delete() }}
{%- endmacro %}
