--- description = "One row per customer with first and most recent order dates, order count and lifetime value."
--- owner = "analytics"
--- tags = ["mart", "customers"]
--- checks = [
---     "not_null(customer_id)",
---     "unique(customer_id)",
---     "expression(lifetime_value >= 0)",
---     { check = "row_count(1, 1000000)", severity = "warn" },
--- ]

-- Lifetime value counts only revenue that has been kept: payments on orders
-- that are shipped or completed (returns and unpaid orders contribute 0).
with customer_orders as (
    select
        o.customer_id,
        min(o.order_date) as first_order_date,
        max(o.order_date) as most_recent_order_date,
        count(o.order_id) as number_of_orders,
        sum(
            case
                when o.status in ('shipped', 'completed') then coalesce(p.total_amount, 0)
                else 0
            end
        ) as lifetime_value
    from stg_orders as o
    left join int_order_payments as p
        on o.order_id = p.order_id
    group by o.customer_id
)

select
    c.customer_id,
    c.first_name,
    c.last_name,
    c.email,
    c.country_code,
    c.signup_date,
    co.first_order_date,
    co.most_recent_order_date,
    coalesce(co.number_of_orders, 0) as number_of_orders,
    round(coalesce(co.lifetime_value, 0), 2) as lifetime_value
from stg_customers as c
left join customer_orders as co
    on c.customer_id = co.customer_id
order by c.customer_id
