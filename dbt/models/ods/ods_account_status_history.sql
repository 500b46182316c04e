{#-
    SCD type 2 history of account status: one row per interval in which a account kept one status
    (valid_from inclusive, valid_to exclusive, null while current; is_current).

    Incremental: the accounts with changes loaded since the watermark (loaded_at minus
    var('ods_watermark_overlap_s'), as in ods_accounts) get their whole history rebuilt from stg and
    replaced (delete+insert on account_id); cost follows the touched accounts, not the table.
    Re-running rebuilds identical rows.
-#}
{{ config(
    unique_key='account_id',
    engine='ReplacingMergeTree(loaded_at)',
    order_by='(account_id, valid_from_change_version, valid_from_change_lsn)',
) }}

{{ scd2_status_history('stg_accounts', 'account_id') }}
