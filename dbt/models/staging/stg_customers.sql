with

source as (
    select * from {{ source('raw', 'customer') }}
),

renamed as (
    select
        -- ids
        customer_id,
        external_ref            as customer_external_ref,

        -- attributes
        full_name,
        email,
        phone,
        national_id,
        date_of_birth,
        address,
        city,
        country,
        kyc_notes,

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
