{{ config(tags=['full_suite']) }}
-- stg views keep a replayed event (same key, change_version, change_lsn) until raw merges it
-- away; downstream models count it once. That is only sound if a replay carries exactly the same
-- values: two different row images under one LSN would be a loader bug.
{% for model, key in [('stg_customers', 'customer_id'), ('stg_accounts', 'account_id'),
                      ('stg_cards', 'card_id'), ('stg_terminals', 'terminal_id'),
                      ('stg_transactions', 'transaction_id')] %}
select '{{ model }}' as model, toString({{ key }}) as entity_id, change_version, change_lsn
from {{ ref(model) }}
group by {{ key }}, change_version, change_lsn
having count() > 1
   and uniqExact(cityHash64(* except (loaded_at, emitted_at, kafka_topic, kafka_partition, kafka_offset))) > 1
{% if not loop.last %}union all{% endif %}
{% endfor %}
