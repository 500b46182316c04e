{#-
    SCD type 2 history of card status: one row per interval in which a card kept one status
    (valid_from inclusive, valid_to exclusive, null while current; is_current).

    Incremental: the cards with changes loaded since the watermark (loaded_at minus
    var('ods_watermark_overlap_s'), as in ods_cards) get their whole history rebuilt from stg and
    replaced (delete+insert on card_id); cost follows the touched cards, not the table.
    Re-running rebuilds identical rows.
-#}
{{ config(
    unique_key='card_id',
    engine='ReplacingMergeTree(loaded_at)',
    order_by='(card_id, valid_from_change_version, valid_from_change_lsn)',
) }}

{{ scd2_status_history('stg_cards', 'card_id') }}
