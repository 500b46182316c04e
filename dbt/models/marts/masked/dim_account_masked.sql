{#-
    Accounts as fraud analysts may see them: the IBAN reduced to its country code and last four
    characters; account_id is the key.
-#}
{#- A view with SQL SECURITY DEFINER: dbt_project.yml, models marts/masked. -#}

select
    account_id,
    customer_id,
    concat(substring(iban, 1, 2), repeat('*', greatest(length(iban) - 6, 0)), right(iban, 4)) as iban_masked,
    currency,
    account_type,
    status,
    is_closed,
    closed_at,
    created_at,
    updated_at
from {{ live_rows(ref('ods_accounts')) }}
