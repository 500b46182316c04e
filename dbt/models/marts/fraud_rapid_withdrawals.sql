{#-
    RAPID_WITHDRAWALS (filler/scenarios.py): at least var('rapid_min_count') withdrawals at ATM
    terminals on one card whose created_at lie within var('rapid_window_s') seconds; every
    status counts. Overlapping qualifying runs merge into one window exactly as
    rapid_withdrawal_windows() does. One row per flagged window.

    Incremental (macros/fraud.sql): detections near this run's changed transactions are
    recomputed and replace (post-hook collapse_to_latest_run) the rows with the same detection_id (card and window start). A
    window that a late-loaded earlier withdrawal extends backwards gets a new id; the post-hook
    drops the older row it now contains.
-#}
-- incremental runs also read the changelog (macros/fraud.sql)
-- depends_on: {{ ref('stg_transactions') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    engine=cluster_engine('MergeTree()'),
    order_by='(card_id, window_start)',
    indexes=[built_at_index()],
    post_hook=[
        "{{ collapse_to_latest_run('detection_id', 'built_at', drop_deleted=false) }}",
        "{{ drop_contained_windows() }}",
        "{{ record_watermark('stg_transactions') }}",
    ],
) }}

with

{% if is_incremental() -%}
scope as (
    {{ fraud_scope() }}
),
{%- endif %}

transactions as (
    {{ transactions_in_scope("txn_type = 'withdrawal'") }}
),

terminals as (
    select terminal_id, terminal_type from {{ ref('ods_terminals') }}
),

atm_withdrawals as (
    select
        transactions.transaction_id,
        transactions.card_id,
        transactions.terminal_id,
        transactions.amount,
        transactions.status,
        transactions.created_at,
        {{ epoch_us('transactions.created_at') }} as created_us
    from transactions
    inner join terminals on transactions.terminal_id = terminals.terminal_id
    where transactions.txn_type = 'withdrawal' and terminals.terminal_type = 'ATM'
),

runs as (
    -- for each withdrawal, the withdrawals of the same card in the rule window ending at it
    select
        card_id,
        created_at as run_end,
        min(created_at) over rule_window as run_start,
        count() over rule_window as withdrawals_in_window
    from atm_withdrawals
    window rule_window as (
        partition by card_id order by created_us
        range between {{ var('rapid_window_s') * 1000000 }} preceding and current row
    )
),

qualifying as (
    select
        card_id,
        run_start,
        run_end,
        lagInFrame(run_end, 1, toDateTime64(0, 6, 'UTC')) over by_end as previous_run_end
    from runs
    where withdrawals_in_window >= {{ var('rapid_min_count') }}
    window by_end as (partition by card_id order by run_end, run_start
                      rows between unbounded preceding and current row)
),

islands as (
    -- a run starting inside the previous one extends it (rapid_withdrawal_windows)
    select
        *,
        sum(toUInt8(run_start > previous_run_end)) over by_end as island
    from qualifying
    window by_end as (partition by card_id order by run_end, run_start
                      rows between unbounded preceding and current row)
),

windows as (
    select card_id, min(run_start) as window_start, max(run_end) as window_end
    from islands
    group by card_id, island
),

evidence as (
    select
        windows.card_id as card_id,
        windows.window_start as window_start,
        windows.window_end as window_end,
        count() as withdrawal_count,
        sum(atm_withdrawals.amount) as total_amount,
        {{ time_ordered_array('atm_withdrawals.created_at', 'atm_withdrawals.transaction_id') }} as transaction_ids,
        {{ time_ordered_array('atm_withdrawals.created_at', 'atm_withdrawals.amount') }} as amounts,
        {{ time_ordered_array('atm_withdrawals.created_at', 'atm_withdrawals.status') }} as statuses,
        {{ time_ordered_array('atm_withdrawals.created_at', 'atm_withdrawals.created_at') }} as transaction_times,
        arraySort(groupUniqArray(atm_withdrawals.terminal_id)) as terminal_ids,
        countIf(atm_withdrawals.status = 'approved') as approved_count,
        countIf(atm_withdrawals.status = 'declined') as declined_count
    from windows
    inner join atm_withdrawals on atm_withdrawals.card_id = windows.card_id
    where atm_withdrawals.created_at between windows.window_start and windows.window_end
    group by windows.card_id, windows.window_start, windows.window_end
)

select
    concat('rapid_withdrawals:', toString(card_id), ':', toString(window_start)) as detection_id,
    'rapid_withdrawals' as scenario,
    card_id,
    window_start,
    window_end,
    ({{ epoch_us('window_end') }} - {{ epoch_us('window_start') }}) / 1e6 as window_seconds,
    withdrawal_count,
    total_amount,
    transaction_ids,
    amounts,
    statuses,
    transaction_times,
    terminal_ids,
    approved_count,
    declined_count,
    format('{} ATM withdrawals on card {} within {} s (rule: >= {} within {} s), total {}',
           toString(withdrawal_count), toString(card_id), toString(window_seconds),
           '{{ var("rapid_min_count") }}', '{{ var("rapid_window_s") }}', toString(total_amount)) as flag_reason,
    {{ build_columns() }}
from evidence
{{ detections_in_scope() }}
