with

source as (
    select * from {{ source('raw', 'transaction') }}
),

renamed as (
    select
        -- ids
        transaction_id,
        card_id,
        terminal_id,

        -- attributes
        txn_type,
        amount,
        currency,
        card_present            as is_card_present,
        entry_mode,
        decline_reason,

        -- status
        status,

        -- timestamps
        created_at,
        approved_at,
        declined_at,
        reversed_at,
        updated_at,

        {{ cdc_metadata_columns() }}
    from source
)

select * from renamed
