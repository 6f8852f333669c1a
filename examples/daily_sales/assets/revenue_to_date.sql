--- description = "Running revenue total: each day adds its revenue to the previous day's total."
--- owner = "finance"
--- [partitions]
--- type = "daily"
--- start = "2024-01-01"
--- end = "2024-01-31"
--- [upstream.revenue_to_date]
--- mapping = "window"
--- offset = -1
--- [columns]
--- day = "DATE"
--- revenue = "DOUBLE"
--- revenue_to_date = "DOUBLE"

-- The first day reads an empty table of the declared columns.
select
    {{start_date}} as day,
    d.revenue,
    round(d.revenue + coalesce((select max(revenue_to_date) from revenue_to_date), 0), 2) as revenue_to_date
from daily_sales as d
