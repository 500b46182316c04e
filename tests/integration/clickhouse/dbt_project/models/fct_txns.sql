{{ config(materialized='incremental', unique_key='txn_id', order_by='txn_id', incremental_strategy='delete+insert') }}

select
    t.txn_id,
    t.card_id,
    t.amount,
    t.created_at,
    c.status = 'closed' as is_closed_card
from {{ ref('stg_txns') }} as t
left join {{ ref('cards') }} as c on c.card_id = t.card_id
{% if is_incremental() %}
where t.created_at > (select max(created_at) from {{ this }})
{% endif %}
