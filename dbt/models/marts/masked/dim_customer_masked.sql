{#-
    Customers as fraud analysts may see them (the analyst role reads marts, not ods.ods_customers):
    names, email, phone and national id as PostgreSQL masked them (schema.sql; the clear values
    never leave it), the national id's keyed token, date of birth reduced to the year, KYC free
    text left out. customer_id is the stable pseudonymous key: a surrogate that says nothing
    about the person and joins to accounts, cards and transactions.
-#}
{#- A view with SQL SECURITY DEFINER: dbt_project.yml, models marts/masked. -#}

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
