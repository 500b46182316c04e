with

source as (
    select * from {{ source('raw', 'customer') }}
),

renamed as (
    select
        -- ids
        customer_id,
        external_ref            as customer_external_ref,

        -- protected at the source (schema.sql): a keyed token, and what an analyst may see
        national_id_token,
        full_name_masked,
        email_masked,
        phone_masked,
        national_id_masked,

        -- attributes
        date_of_birth,
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
