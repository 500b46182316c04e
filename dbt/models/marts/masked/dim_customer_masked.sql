{#-
    Customers as fraud analysts may see them (the analyst role reads marts, not ods.ods_customers):
    names, email, phone and national id as PostgreSQL masked them (schema.sql; the clear values
    never leave it), the national id's keyed token, date of birth reduced to the year, KYC free
    text left out. customer_id is the stable pseudonymous key: a surrogate that says nothing
    about the person and joins to accounts, cards and transactions.
-#}
{#- A view (always current; two runs at once never collide on a table swap) with SQL SECURITY
    DEFINER: it reads ods with its creator's (transformer's) rights, so the analyst needs SELECT
    on the view only, never on the PII tables under it. -#}
{{ config(materialized='view', sql_security='definer', definer='CURRENT_USER') }}

select
    customer_id,
    full_name_masked,
    email_masked,
    phone_masked,
    national_id_masked,
    national_id_token,
    toYear(date_of_birth) as birth_year,
    city,
    country,
    status,
    is_closed,
    closed_at,
    created_at,
    updated_at
from {{ live_rows(ref('ods_customers')) }}
