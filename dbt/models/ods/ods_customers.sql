{#-
    Current state of each customer (one row per customer_id; closed customers included with status 'closed',
    hard-deleted ones absent).

    Incremental: the customers with changes loaded in this run's window (watermark - overlap, run
    upper bound] get their latest change recomputed from their whole changelog (a lookup by key
    in raw) and appended; the post-hook keeps one row per key (the highest
    (change_version, change_lsn)) and drops deleted keys. Cost follows the touched keys, not
    the table. Re-running, or two runs at once, converge to the same rows; until the post-hook
    has run, `FINAL` gives the exact state (ReplacingMergeTree(row_version, is_deleted)).
-#}
{{ config(
    engine=cluster_engine('ReplacingMergeTree(row_version, is_deleted)'),
    order_by='customer_id',
    indexes=[built_at_index()],
    post_hook=[
        "{{ collapse_to_latest_run('customer_id') }}",
        "{{ record_watermark('stg_customers') }}",
    ],
) }}

{{ ods_current_state('stg_customers', 'customer_id') }}
