--- description = "Sales and revenue per day. Reads only its day's source files."
--- owner = "analytics"
--- checks = ["not_null(day)", "expression(revenue >= 0)"]
--- [partitions]
--- type = "daily"
--- start = "2024-01-01"
--- end = "2024-01-31"
--- column = "day"            # every row must fall on its partition's day (checked before commit)

select
    {{start_date}} as day,
    count(*) as sales,
    round(sum(amount_cents) / 100.0, 2) as revenue
from sales
