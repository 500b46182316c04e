with

source as (
    select * from {{ source('raw', 'terminal') }}
),

renamed as (
    select
        -- ids
        terminal_id,

        -- attributes
        terminal_type,
        merchant_name,
        mcc,
        city,
        country,
        currency,
        description,

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
