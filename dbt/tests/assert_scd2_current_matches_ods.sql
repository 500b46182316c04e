{{ config(tags=['full_suite']) }}
-- The current interval of each card/account status history agrees with the ODS current state,
-- every live ODS row has a current interval, and intervals never run backwards. Both models are
-- built by one run as of one source instant T; should the latest run have built only one of
-- them, only entities whose latest change both models' T cover are compared.
{% for entity in ['card', 'account'] %}
{%- set ods = ref('ods_' ~ entity ~ 's') -%}
{%- set history = ref('ods_' ~ entity ~ '_status_history') -%}
{%- set stg = ref('stg_' ~ entity ~ 's') -%}
{%- set ods_t -%}(select max(source_upper_bound) from {{ watermark_relation() }} where model = '{{ ods }}'){%- endset -%}
{%- set history_t -%}(select max(source_upper_bound) from {{ watermark_relation() }} where model = '{{ history }}'){%- endset -%}
select '{{ entity }}' as entity, toString(o.{{ entity }}_id) as entity_id, 'current status differs or missing' as problem
from {{ live_rows(ods, 'o') }}
left join (select * from {{ history }} where is_current) as h
    on h.{{ entity }}_id = o.{{ entity }}_id
where (h.status != o.status or h.{{ entity }}_id = 0)
  and o.source_committed_at <= {{ history_t }}
  and o.{{ entity }}_id not in (
      select {{ entity }}_id from {{ stg }}
      where source_committed_at > {{ ods_t }} and source_committed_at <= {{ history_t }}
  )
union all
select '{{ entity }}', toString({{ entity }}_id), 'valid_to before valid_from'
from {{ history }}
where valid_to is not null and valid_to < valid_from
{% if not loop.last %}union all{% endif %}
{% endfor %}
