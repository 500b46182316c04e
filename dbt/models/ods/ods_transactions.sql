{#-
    Transaction history: every transaction with its latest status (one row per transaction_id;
    approved_at / declined_at / reversed_at keep the time each status was reached; hard-deleted
    transactions absent).

    Incremental: transactions with changes loaded in this run's window (watermark - overlap, run
    upper bound] are recomputed from their whole changelog (lookup by key in raw) and appended;
    the post-hook keeps one row per transaction_id and drops deleted ones. Cost follows the new
    changes, not the table. Re-runs and two runs at once converge to the same rows.
    created_at has a minmax index: the fraud marts read time ranges.
-#}
{{ config(
    engine=cluster_engine('ReplacingMergeTree(row_version, is_deleted)'),
    order_by='transaction_id',
    indexes=[
        built_at_index(),
        {'name': 'created_at_idx', 'definition': 'created_at TYPE minmax GRANULARITY 1'},
    ],
    post_hook=[
        "{{ collapse_to_latest_run('transaction_id') }}",
        "{{ record_watermark('stg_transactions') }}",
    ],
) }}

{{ ods_current_state('stg_transactions', 'transaction_id') }}
