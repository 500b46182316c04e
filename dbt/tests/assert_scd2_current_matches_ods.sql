-- The current interval of each card/account status history agrees with the ODS current state,
-- every ODS row that is not deleted has exactly one current interval, and intervals never run backwards.
{% for entity in ['card', 'account'] %}
select '{{ entity }}' as entity, toString(o.{{ entity }}_id) as entity_id, 'current status differs or missing' as problem
from {{ live_rows(ref('ods_' ~ entity ~ 's'), 'o') }}
left join (select * from {{ ref('ods_' ~ entity ~ '_status_history') }} final where is_current) as h
    on h.{{ entity }}_id = o.{{ entity }}_id
where h.status != o.status or h.{{ entity }}_id = 0
union all
select '{{ entity }}', toString({{ entity }}_id), 'valid_to before valid_from'
from {{ ref('ods_' ~ entity ~ '_status_history') }} final
where valid_to is not null and valid_to < valid_from
{% if not loop.last %}union all{% endif %}
{% endfor %}
