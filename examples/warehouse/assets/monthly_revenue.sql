--- description = "Orders, active customers and recognised revenue (shipped and completed orders) per calendar month."
--- owner = "finance"
--- tags = ["mart", "finance", "reporting"]

select
    cast(date_trunc('month', order_date) as date) as order_month,
    count(*) as order_count,
    count(distinct customer_id) as customer_count,
    sum(case when status in ('shipped', 'completed') then 1 else 0 end) as revenue_order_count,
    round(sum(case when status in ('shipped', 'completed') then amount else 0 end), 2) as revenue,
    round(sum(case when status in ('returned', 'return_pending') then amount else 0 end), 2) as returned_amount
from orders
group by cast(date_trunc('month', order_date) as date)
order by order_month
