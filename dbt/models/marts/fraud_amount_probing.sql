{#-
    AMOUNT_PROBING (filler/scenarios.py): on one card, at least var('probing_min_small')
    purchases with amount < var('probing_small_lt'), each earlier than a purchase with
    amount >= var('probing_large_ge') and at most var('probing_window_s') seconds before it.
    Every status counts. One row per large purchase that completes a ladder, as
    probing_windows() does; window = first small purchase to that large one.

    Incremental (macros/fraud.sql): ladders near this run's changed transactions are recomputed
    and replace (post-hook collapse_to_latest_run) the rows of the same large purchase (detection_id).
-#}
-- incremental runs also read the changelog (macros/fraud.sql)
-- depends_on: {{ ref('stg_transactions') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    meta={'bounded_by': ['ods_transactions']},
    order_by='(card_id, window_end)',
    indexes=[built_at_index()],
    post_hook=[
        "{{ collapse_to_latest_run('detection_id', 'built_at', drop_deleted=false) }}",
        "{{ record_watermark() }}",
    ],
) }}

with

{% if is_incremental() -%}
scope as (
    {{ fraud_scope() }}
),
{%- endif %}

purchases as (
    select
        transaction_id,
        card_id,
        terminal_id,
        amount,
        status,
        created_at,
        {{ epoch_us('created_at') }} as created_us
    from ({{ transactions_in_scope("txn_type = 'purchase'") }})
),

large_purchases as (
    select * from purchases where amount >= {{ var('probing_large_ge') }}
),

small_purchases as (
    select * from purchases where amount < {{ var('probing_small_lt') }}
),

ladders as (
    select
        large_purchases.transaction_id as large_transaction_id,
        large_purchases.card_id as card_id,
        large_purchases.amount as large_amount,
        large_purchases.status as large_status,
        large_purchases.terminal_id as large_terminal_id,
        large_purchases.created_at as large_created_at,
        small_purchases.transaction_id as small_transaction_id,
        small_purchases.amount as small_amount,
        small_purchases.terminal_id as small_terminal_id,
        small_purchases.created_at as small_created_at
    from large_purchases
    inner join small_purchases on small_purchases.card_id = large_purchases.card_id
    where small_purchases.created_us < large_purchases.created_us
      and large_purchases.created_us - small_purchases.created_us <= {{ var('probing_window_s') * 1000000 }}
),

evidence as (
    select
        large_transaction_id,
        any(card_id) as card_id,
        any(large_amount) as large_amount,
        any(large_status) as large_status,
        any(large_terminal_id) as large_terminal_id,
        any(large_created_at) as window_end,
        min(small_created_at) as window_start,
        count() as small_count,
        {{ time_ordered_array('small_created_at', 'small_transaction_id') }} as small_transaction_ids,
        {{ time_ordered_array('small_created_at', 'small_amount') }} as small_amounts,
        arraySort(groupUniqArray(small_terminal_id)) as small_terminal_ids
    from ladders
    group by large_transaction_id
    having small_count >= {{ var('probing_min_small') }}
)

select
    concat('amount_probing:', toString(large_transaction_id)) as detection_id,
    'amount_probing' as scenario,
    card_id,
    window_start,
    window_end,
    ({{ epoch_us('window_end') }} - {{ epoch_us('window_start') }}) / 1e6 as window_seconds,
    small_count,
    small_transaction_ids,
    small_amounts,
    small_terminal_ids,
    large_transaction_id,
    large_amount,
    large_status,
    large_terminal_id,
    arrayPushBack(small_transaction_ids, large_transaction_id) as transaction_ids,
    format('{} purchases under {} then {} of {} on card {} within {} s (rule: >= {} small, large >= {}, {} s)',
           toString(small_count), '{{ var("probing_small_lt") }}', large_status, toString(large_amount),
           toString(card_id), toString(window_seconds), '{{ var("probing_min_small") }}',
           '{{ var("probing_large_ge") }}', '{{ var("probing_window_s") }}') as flag_reason,
    {{ build_columns() }}
from evidence
{{ detections_in_scope() }}
