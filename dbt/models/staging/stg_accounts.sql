with

source as (
    select * from {{ source('raw', 'account') }}
),

renamed as (
    select
        -- ids
        account_id,
        customer_id,

        -- attributes
        iban,
        currency,
        account_type,

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
