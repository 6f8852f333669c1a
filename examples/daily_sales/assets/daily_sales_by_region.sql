--- description = "Sales and revenue per day and region (the region is the `region=` folder)."
--- owner = "analytics"
--- [partitions]
--- type = "daily"
--- start = "2024-01-01"
--- end = "2024-01-31"
--- [partitions.static]
--- name = "region"
--- values = ["eu", "us", "apac"]

select
    {{start_date}} as day,
    count(*) as sales,
    coalesce(round(sum(amount_cents) / 100.0, 2), 0) as revenue
from sales
where region = {{region}}
