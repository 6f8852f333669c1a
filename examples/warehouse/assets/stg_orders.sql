--- description = "Cleaned orders: typed order date and a normalised status."
--- tags = ["staging"]

select
    id as order_id,
    customer_id,
    cast(order_date as date) as order_date,
    lower(status) as status
from raw_orders
