--- description = "Payments rolled up to one row per paid order, split by payment method."
--- tags = ["intermediate"]
--- checks = ["unique(order_id)", "relationships(order_id, stg_orders.order_id)"]

-- Unpaid orders have no row here; the marts keep them with an outer join.
select
    order_id,
    count(*) as payment_count,
    sum(amount) as total_amount,
    sum(case when payment_method = 'credit_card' then amount else 0 end) as credit_card_amount,
    sum(case when payment_method = 'coupon' then amount else 0 end) as coupon_amount,
    sum(case when payment_method = 'bank_transfer' then amount else 0 end) as bank_transfer_amount,
    sum(case when payment_method = 'gift_card' then amount else 0 end) as gift_card_amount
from stg_payments
group by order_id
