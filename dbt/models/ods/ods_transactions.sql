{#-
    Transaction history: every transaction with its latest status (one row per transaction_id;
    approved_at / declined_at / reversed_at keep the time each status was reached).

    Watermark: loaded_at with an overlap of var('ods_watermark_overlap_s'), not _lsn: snapshots
    (_version = 0) and the pg_to_ch backfill load old LSNs late; load time only grows. Rows
    re-read by the overlap are merged again with the row already in ODS and the highest
    (change_version, change_lsn) wins, so re-runs change nothing.

    Idempotent: delete+insert on transaction_id into ReplacingMergeTree(row_version), so two
    overlapping runs at worst leave a duplicate that FINAL / merges collapse.

    Deletes: hard-deleted transactions stay as tombstones (is_deleted = true).
-#}
{{ config(
    unique_key='transaction_id',
    engine='ReplacingMergeTree(row_version)',
    order_by='transaction_id',
) }}

{{ ods_current_state('stg_transactions', 'transaction_id') }}
