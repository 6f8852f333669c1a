--- description = "Revenue over the 7 days ending on each day: reads exactly 7 daily partitions."
--- owner = "analytics"
--- [partitions]
--- type = "daily"
--- start = "2024-01-01"
--- end = "2024-01-31"
--- [upstream.daily_sales]
--- mapping = "window"
--- lag = 6

select
    {{start_date}} as day,
    count(*) as days,
    sum(revenue) as revenue_7d
from daily_sales
