-- The current interval of each card/account status history agrees with the ODS current state,
-- every live ODS row has a current interval, and intervals never run backwards. The two models
-- may have been built at different moments (one dbt invocation per model under Cosmos): only
-- entities whose latest change both models had processed are compared.
{% for entity in ['card', 'account'] %}
{%- set ods = ref('ods_' ~ entity ~ 's') -%}
{%- set history = ref('ods_' ~ entity ~ '_status_history') -%}
select '{{ entity }}' as entity, toString(o.{{ entity }}_id) as entity_id, 'current status differs or missing' as problem
from {{ live_rows(ods, 'o') }}
left join (select * from {{ history }} where is_current) as h
    on h.{{ entity }}_id = o.{{ entity }}_id
where (h.status != o.status or h.{{ entity }}_id = 0)
  and o.loaded_at <= (select max(upper_bound) from {{ watermark_relation() }} where model = '{{ history }}')
  and h.loaded_at <= (select max(upper_bound) from {{ watermark_relation() }} where model = '{{ ods }}')
union all
select '{{ entity }}', toString({{ entity }}_id), 'valid_to before valid_from'
from {{ history }}
where valid_to is not null and valid_to < valid_from
{% if not loop.last %}union all{% endif %}
{% endfor %}
