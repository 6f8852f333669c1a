--- description = "Cleaned customers: typed signup date, normalised email and country code."
--- tags = ["staging"]

select
    id as customer_id,
    first_name,
    last_name,
    lower(trim(email)) as email,
    cast(signup_date as date) as signup_date,
    upper(country) as country_code
from raw_customers
