--- description = "One row per order with its status, total paid amount and the amount paid by each method."
--- owner = "analytics"
--- tags = ["mart", "finance"]
--- checks = ["unique(order_id)"]

select
    o.order_id,
    o.customer_id,
    o.order_date,
    o.status,
    coalesce(p.payment_count, 0) as payment_count,
    round(coalesce(p.total_amount, 0), 2) as amount,
    round(coalesce(p.credit_card_amount, 0), 2) as credit_card_amount,
    round(coalesce(p.coupon_amount, 0), 2) as coupon_amount,
    round(coalesce(p.bank_transfer_amount, 0), 2) as bank_transfer_amount,
    round(coalesce(p.gift_card_amount, 0), 2) as gift_card_amount
from stg_orders as o
left join int_order_payments as p
    on o.order_id = p.order_id
order by o.order_id
