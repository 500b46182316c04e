{#-
    CLOSED_CARD_ATTEMPTS (filler/scenarios.py): a card whose current status is 'closed' has at
    least one transaction (any type, any status) with created_at > the card's closed_at.
    Decline reasons are shown as evidence but not relied on. One row per card.

    Incremental: recomputed for the closed cards that changed in this run or have transaction
    changes in it (normal traffic never uses a closed card, so this set stays small); their
    transactions are read from the earliest closed_at on (minmax index on created_at); the
    post-hook collapse_to_latest_run keeps one row per card.
-#}
-- incremental runs also read the changelog (macros/fraud.sql)
-- depends_on: {{ ref('stg_cards') }}
-- depends_on: {{ ref('stg_transactions') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    engine=cluster_engine('MergeTree()'),
    order_by='card_id',
    indexes=[built_at_index()],
    post_hook=[
        "{{ collapse_to_latest_run('card_id', 'built_at', drop_deleted=false) }}",
        "{{ record_watermark(['stg_cards', 'stg_transactions']) }}",
    ],
) }}

with

{% if is_incremental() -%}
changed_cards as (
    select card_id from {{ ref('stg_cards') }} where {{ in_this_run() }}
    union distinct
    select card_id from {{ ref('stg_transactions') }} where {{ in_this_run() }}
),
{%- endif %}

closed_cards as (
    select card_id, account_id, closed_at
    from {{ ref('ods_cards') }}
    where status = 'closed'
    {%- if is_incremental() %}
      and card_id in (select card_id from changed_cards)
    {%- endif %}
),

transactions as (
    select * from {{ ref('ods_transactions') }}
    where card_id in (select card_id from closed_cards)
    {%- if is_incremental() %}
      and created_at > (select min(closed_at) from closed_cards)
    {%- endif %}
),

attempts as (
    select
        transactions.transaction_id,
        transactions.card_id,
        transactions.terminal_id,
        transactions.txn_type,
        transactions.amount,
        transactions.status,
        transactions.decline_reason,
        transactions.created_at,
        closed_cards.account_id as account_id,
        closed_cards.closed_at as card_closed_at
    from transactions
    inner join closed_cards on transactions.card_id = closed_cards.card_id
    where transactions.created_at > closed_cards.closed_at
),

evidence as (
    select
        card_id,
        any(account_id) as account_id,
        any(card_closed_at) as card_closed_at,
        min(created_at) as window_start,
        max(created_at) as window_end,
        count() as attempt_count,
        sum(amount) as total_amount,
        {{ time_ordered_array('created_at', 'transaction_id') }} as transaction_ids,
        {{ time_ordered_array('created_at', 'amount') }} as amounts,
        {{ time_ordered_array('created_at', 'txn_type') }} as txn_types,
        {{ time_ordered_array('created_at', 'status') }} as statuses,
        {{ time_ordered_array('created_at', "ifNull(decline_reason, '')") }} as decline_reasons,
        arraySort(groupUniqArray(terminal_id)) as terminal_ids,
        countIf(status = 'approved') as approved_count
    from attempts
    group by card_id
)

select
    concat('closed_card_attempts:', toString(card_id)) as detection_id,
    'closed_card_attempts' as scenario,
    card_id,
    account_id,
    card_closed_at,
    window_start,
    window_end,
    ({{ epoch_us('window_start') }} - {{ epoch_us('card_closed_at') }}) / 1e6 as first_attempt_seconds_after_close,
    attempt_count,
    approved_count,
    total_amount,
    transaction_ids,
    amounts,
    txn_types,
    statuses,
    decline_reasons,
    terminal_ids,
    format('{} transaction(s) on card {} after it was closed at {} ({} approved)',
           toString(attempt_count), toString(card_id), toString(card_closed_at),
           toString(approved_count)) as flag_reason,
    {{ build_columns() }}
from evidence
