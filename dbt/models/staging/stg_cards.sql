with

source as (
    select * from {{ source('raw', 'card') }}
),

renamed as (
    select
        -- ids
        card_id,
        account_id,

        -- attributes
        pan_token,
        pan_last4,
        card_type,
        expires_on,

        -- status
        status,
        {{ status_is('closed') }} as is_closed,

        -- timestamps
        closed_at,
        created_at,
        updated_at,

        {{ cdc_metadata_columns() }}
    from source
)

select * from renamed
