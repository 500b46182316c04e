{{ config(materialized='view') }}

with source as (
    select * from {{ ref('txns') }}
),

renamed as (
    select
        txn_id,
        card_id,
        toDecimal64(amount, 2) as amount,
        toDateTime(created_at) as created_at
    from source
)

select * from renamed
