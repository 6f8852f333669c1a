--- description = "Cleaned payments with amounts converted from cents to dollars."
--- tags = ["staging"]

select
    id as payment_id,
    order_id,
    payment_method,
    -- raw amounts are integer cents
    amount_cents / 100.0 as amount
from raw_payments
