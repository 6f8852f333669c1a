--- description = "Cleaned orders: typed order date and a normalised status."
--- tags = ["staging"]
--- checks = ["accepted_values(status, ['placed', 'shipped', 'completed', 'return_pending', 'returned'])"]

select
    id as order_id,
    customer_id,
    cast(order_date as date) as order_date,
    lower(status) as status
from raw_orders
