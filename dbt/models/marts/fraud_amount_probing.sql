{#-
    AMOUNT_PROBING (filler/scenarios.py), one row per case: an episode of probing on one card. A
    ladder is a purchase with amount >= var('probing_large_ge') preceded on the same card by at
    least var('probing_min_small') purchases with amount < var('probing_small_lt'), each earlier
    than it and at most var('probing_window_s') seconds before it (every status counts, as in
    probing_windows()). Ladders of one card whose windows overlap (several large purchases after
    the same small ones) are one episode: the case, window = its first small purchase to its last
    large one, with every small and large purchase of it as evidence.

    Incremental (macros/fraud.sql): cases near this run's changed transactions are recomputed and
    replace (post-hook collapse_to_latest_run) the rows of the same case (detection_id: card and
    window start). A case that a late-loaded earlier purchase extends backwards gets a new id; the
    post-hook drops the older row it now contains.
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

ladders_by_large as (
    select
        large_transaction_id,
        any(card_id) as card_id,
        any(large_created_at) as large_created_at,
        min(small_created_at) as ladder_start
    from ladders
    group by large_transaction_id
    having count() >= {{ var('probing_min_small') }}
),

-- a ladder starting after every earlier ladder of its card has ended begins a new episode
ladder_starts as (
    select
        *,
        max(toNullable(large_created_at)) over (
            partition by card_id order by ladder_start, large_created_at
            rows between unbounded preceding and 1 preceding
        ) as previous_end
    from ladders_by_large
),

episodes as (
    select
        large_transaction_id,
        card_id,
        sum(if(previous_end is null or ladder_start > previous_end, 1, 0)) over (
            partition by card_id order by ladder_start, large_created_at
            rows between unbounded preceding and current row
        ) as episode
    from ladder_starts
),

evidence as (
    select
        ladders.card_id as card_id,
        episodes.episode as episode,
        min(ladders.small_created_at) as window_start,
        max(ladders.large_created_at) as window_end,
        {{ time_ordered_array('small_created_at', 'small_transaction_id') }} as small_pairs_ids,
        {{ time_ordered_array('small_created_at', 'small_amount') }} as small_pairs_amounts,
        {{ time_ordered_array('large_created_at', 'large_transaction_id') }} as large_pairs_ids,
        {{ time_ordered_array('large_created_at', 'large_amount') }} as large_pairs_amounts,
        {{ time_ordered_array('large_created_at', 'large_status') }} as large_pairs_statuses,
        arraySort(groupUniqArray(small_terminal_id)) as small_terminal_ids,
        arraySort(groupUniqArray(large_terminal_id)) as large_terminal_ids
    from ladders
    inner join episodes on episodes.large_transaction_id = ladders.large_transaction_id
    group by ladders.card_id, episodes.episode
),

-- each ladder pair repeats its small and large purchase: keep every purchase once, in time order
cases as (
    select
        card_id,
        window_start,
        window_end,
        arrayDistinct(small_pairs_ids) as small_transaction_ids,
        arrayMap(id -> small_pairs_amounts[indexOf(small_pairs_ids, id)], small_transaction_ids) as small_amounts,
        arrayDistinct(large_pairs_ids) as large_transaction_ids,
        arrayMap(id -> large_pairs_amounts[indexOf(large_pairs_ids, id)], large_transaction_ids) as large_amounts,
        arrayMap(id -> large_pairs_statuses[indexOf(large_pairs_ids, id)], large_transaction_ids) as large_statuses,
        small_terminal_ids,
        large_terminal_ids
    from evidence
)

select
    concat('amount_probing:', toString(card_id), ':', toString({{ epoch_us('window_start') }})) as detection_id,
    'amount_probing' as scenario,
    card_id,
    window_start,
    window_end,
    ({{ epoch_us('window_end') }} - {{ epoch_us('window_start') }}) / 1e6 as window_seconds,
    length(small_transaction_ids) as small_count,
    small_transaction_ids,
    small_amounts,
    small_terminal_ids,
    length(large_transaction_ids) as large_count,
    large_transaction_ids,
    large_amounts,
    large_statuses,
    large_terminal_ids,
    arrayConcat(small_transaction_ids, large_transaction_ids) as transaction_ids,
    format('{} purchases under {} then {} of at least {} ({}) on card {} within {} s (rule: at least {} purchases under {}, each at most {} s before a purchase of at least {})',
           toString(small_count), '{{ var("probing_small_lt") }}', toString(large_count),
           '{{ var("probing_large_ge") }}', arrayStringConcat(arrayMap(
               (a, st) -> concat(toString(a), ' ', st), large_amounts, large_statuses), ', '),
           toString(card_id), toString(window_seconds), '{{ var("probing_min_small") }}',
           '{{ var("probing_small_lt") }}', '{{ var("probing_window_s") }}', '{{ var("probing_large_ge") }}') as flag_reason,
    {{ build_columns() }}
from cases
{{ detections_in_scope() }}
