{#-
    Customers as fraud analysts may see them (the analyst role reads marts, not ods.ods_customers):
    names, email, phone and national id masked, date of birth reduced to the year, address and
    KYC free text left out. customer_id is the stable pseudonymous key: a surrogate that says
    nothing about the person and joins to accounts, cards and transactions.
-#}
{#- A view (always current; two runs at once never collide on a table swap) with SQL SECURITY
    DEFINER: it reads ods with its creator's (transformer's) rights, so the analyst needs SELECT
    on the view only, never on the PII tables under it. -#}
{{ config(materialized='view', sql_security='definer', definer='CURRENT_USER') }}

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
