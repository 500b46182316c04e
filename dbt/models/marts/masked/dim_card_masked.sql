{#-
    Cards as fraud analysts may see them: the PAN masked to its last four digits (pan_last4 kept
    to match a customer's call or a statement) and its keyed token; everything else as in ODS.
    card_id is the key.
-#}
{#- A view (always current; two runs at once never collide on a table swap) with SQL SECURITY
    DEFINER: it reads ods with its creator's (transformer's) rights, so the analyst needs SELECT
    on the view only, never on the PII tables under it. -#}
{{ config(materialized='view', sql_security='definer', definer='CURRENT_USER') }}

select
    card_id,
    account_id,
    concat('************', pan_last4) as pan_masked,
    pan_last4,
    pan_token,
    card_type,
    expires_on,
    status,
    is_closed,
    closed_at,
    created_at,
    updated_at
from {{ live_rows(ref('ods_cards')) }}
