{#-
    Customers as fraud analysts may see them (the analyst role reads marts, not ods.ods_customers):
    names, email, phone and national id masked, date of birth reduced to the year, address and
    KYC free text left out. customer_id is the stable pseudonymous key: a surrogate that says
    nothing about the person and joins to accounts, cards and transactions.
-#}
{{ config(order_by='customer_id') }}

select
    customer_id,
    {{ mask_name('full_name') }}                                    as full_name_masked,
    concat(substring(email, 1, 1), '***@', splitByChar('@', email)[2]) as email_masked,
    concat(repeat('*', greatest(length(phone) - 2, 0)), right(phone, 2)) as phone_masked,
    concat(repeat('*', greatest(length(national_id) - 2, 0)), right(national_id, 2)) as national_id_masked,
    toYear(date_of_birth)                                           as birth_year,
    city,
    country,
    status,
    is_closed,
    closed_at,
    created_at,
    updated_at
from {{ live_rows(ref('ods_customers')) }}
