{{ config(tags=['full_suite']) }}
-- Every flagged case meets its rule (filler/scenarios.py) on the evidence it carries.
select detection_id, 'rapid_withdrawals rule not met' as problem
from {{ ref('fraud_rapid_withdrawals') }}
where withdrawal_count < {{ var('rapid_min_count') }} or window_end < window_start
union all
select detection_id, 'amount_probing rule not met'
from {{ ref('fraud_amount_probing') }}
where small_count < {{ var('probing_min_small') }}
   or large_count < 1
   or window_end < window_start
   or arrayExists(a -> a < {{ var('probing_large_ge') }}, large_amounts)
   or arrayExists(a -> a >= {{ var('probing_small_lt') }}, small_amounts)
union all
select detection_id, 'closed_card_attempts before close'
from {{ ref('fraud_closed_card_attempts') }}
where window_start <= card_closed_at or attempt_count < 1
