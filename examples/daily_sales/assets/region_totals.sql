--- description = "Revenue per region over the month: the region comes from the `region=` folder of each partition."
--- owner = "finance"

select region, sum(sales) as sales, round(sum(revenue), 2) as revenue
from daily_sales_by_region
group by region
order by region
