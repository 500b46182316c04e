{#-
    Accounts as fraud analysts may see them: the IBAN reduced to its country code and last four
    characters; account_id is the key.
-#}
{#- A view (always current; two runs at once never collide on a table swap) with SQL SECURITY
    DEFINER: it reads ods with its creator's (transformer's) rights, so the analyst needs SELECT
    on the view only, never on the PII tables under it. -#}
{{ config(materialized='view', sql_security='definer', definer='CURRENT_USER') }}

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
