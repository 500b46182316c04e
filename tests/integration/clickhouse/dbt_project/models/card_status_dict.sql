{{ config(
    materialized='dictionary',
    fields=[('card_id', 'UInt64'), ('status', 'String')],
    primary_key='card_id',
    layout='HASHED()',
    lifetime='MIN 0 MAX 0',
) }}

select card_id, status from {{ ref('cards') }}
