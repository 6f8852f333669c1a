--- description = "The month in one row: not partitioned, so it reads every day."
--- owner = "finance"

select
    count(*) as days,
    sum(sales) as sales,
    round(sum(revenue), 2) as revenue,
    max(revenue) as best_day_revenue
from daily_sales
