{#-
    Current state of each terminal (one row per terminal_id, closed terminals included with status 'closed').

    Watermark: loaded_at (the raw row's _loaded_at, server time of the load) with an overlap of
    var('ods_watermark_overlap_s'). Not _lsn: the dimension and transaction connectors, Debezium
    snapshots (_version = 0) and the pg_to_ch backfill all load old LSNs late, so an LSN
    watermark would skip them; load time only grows. The overlap re-reads inserts that were in
    flight when the previous run read; re-reading is harmless because the merge keeps the
    highest (change_version, change_lsn) per key, with the row already in ODS as a candidate.

    Idempotent: delete+insert on terminal_id, and the table is ReplacingMergeTree(row_version) ordered
    by terminal_id, so a row inserted twice by two overlapping runs collapses on merge (read with FINAL,
    see macro live_rows).

    Deletes: kept as tombstones (is_deleted = true) so a replayed older change loaded later can
    never resurrect a deleted terminal; consumers use live_rows() / where not is_deleted.
-#}
{{ config(
    unique_key='terminal_id',
    engine='ReplacingMergeTree(row_version)',
    order_by='terminal_id',
) }}

{{ ods_current_state('stg_terminals', 'terminal_id') }}
