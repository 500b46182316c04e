{#-
    SCD type 2 history of account status: one row per interval in which a account kept one status
    (valid_from inclusive, valid_to exclusive and null while current; is_current).

    Incremental: the accounts with changes loaded in this run's window get their whole history
    rebuilt from their changelog (lookup by key) and appended; the post-hook keeps, per account,
    the intervals of the run that saw its latest change. Cost follows the touched accounts.
-#}
{{ config(
    engine=cluster_engine('MergeTree()'),
    order_by='(account_id, valid_from_change_version, valid_from_change_lsn)',
    indexes=[built_at_index()],
    post_hook=[
        "{{ collapse_to_latest_run('account_id', 'key_row_version', drop_deleted=false) }}",
        "{{ record_watermark('stg_accounts') }}",
    ],
) }}

{{ scd2_status_history('stg_accounts', 'account_id') }}
