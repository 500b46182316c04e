{#-
    Cards as fraud analysts may see them: the PAN masked to its last four digits (pan_last4 kept
    to match a customer's call or a statement) and its keyed token; everything else as in ODS.
    card_id is the key.
-#}
{#- A view with SQL SECURITY DEFINER: dbt_project.yml, models marts/masked. -#}

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
