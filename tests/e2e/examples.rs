//! The partitioned example project (`examples/daily_sales`) runs end to
//! end as its README says, and its numbers agree with the source files
//! summed here independently.

use std::collections::BTreeMap;

use crate::partitions::{catalog, committed_by, stale_keys};
use crate::util::Project;

/// Every sale of the example's CSV files: (day, region, cents).
fn sales(p: &Project) -> Vec<(String, String, i64)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(p.path("data/sales")).unwrap() {
        let dir = entry.unwrap().path();
        let day = dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("date=")
            .to_owned();
        let text = std::fs::read_to_string(dir.join("sales.csv")).unwrap();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            out.push((
                day.clone(),
                fields[1].to_owned(),
                fields[2].parse::<i64>().unwrap(),
            ));
        }
    }
    out
}

/// Total cents by `key` of a sale.
fn cents_by(
    sales: &[(String, String, i64)],
    key: fn(&(String, String, i64)) -> &str,
) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for sale in sales {
        *out.entry(key(sale).to_owned()).or_default() += sale.2;
    }
    out
}

/// Dollars as the assets round them equal these cents.
fn assert_dollars(dollars: f64, cents: i64, what: &str) {
    assert!(
        (dollars - cents as f64 / 100.0).abs() < 0.005,
        "{what}: {dollars} vs {cents} cents"
    );
}

fn query_f64(p: &Project, sql: &str, column: &str) -> f64 {
    let rows = p.query_json(sql);
    rows[0][column].as_f64().unwrap()
}

#[test]
fn daily_sales_example_runs_and_adds_up() {
    let p = Project::example_named("daily_sales");
    let (_, outcomes) = p.materialize(&["--jobs", "2"]);
    // 31 days x (daily_sales, rolling_7d, revenue_to_date) + 93 region
    // days + the month summary + the region totals.
    assert_eq!(outcomes.len(), 31 * 3 + 93 + 2);
    assert!(
        outcomes.iter().all(|(_, o)| o == "materialized"),
        "{outcomes:?}"
    );

    let sales = sales(&p);
    let cents = cents_by(&sales, |s| &s.0);
    assert_eq!(cents.len(), 31);
    let month: i64 = cents.values().sum();
    let to_date = query_f64(
        &p,
        "select revenue_to_date from revenue_to_date where day = DATE '2024-01-31'",
        "revenue_to_date",
    );
    assert_dollars(to_date, month, "revenue to date");
    let summary = query_f64(&p, "select revenue from month_summary", "revenue");
    assert_dollars(summary, month, "month summary");
    let week: i64 = cents
        .iter()
        .filter(|(d, _)| d.as_str() >= "2024-01-09" && d.as_str() <= "2024-01-15")
        .map(|(_, c)| c)
        .sum();
    let rolling = query_f64(
        &p,
        "select revenue_7d from rolling_7d where day = DATE '2024-01-15'",
        "revenue_7d",
    );
    assert_dollars(rolling, week, "7 days to 2024-01-15");

    // The region is a column of the date x region table (from its
    // `region=` folders), so an unpartitioned asset can group by it.
    let by_region = p.query_json("select region, revenue from region_totals order by region");
    let expected_regions = cents_by(&sales, |s| &s.1);
    let got: Vec<(String, f64)> = by_region
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["region"].as_str().unwrap().to_owned(),
                r["revenue"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), 3, "{by_region}");
    for (region, revenue) in &got {
        assert_dollars(*revenue, expected_regions[region], region);
    }
    let lineage = p.run(&["lineage", "region_totals", "--column", "region"]);
    assert!(
        lineage
            .stdout
            .contains("daily_sales_by_region.region [partition dimension]"),
        "{}",
        lineage.stdout
    );

    // Statistics from the files' footers: counting rows reads no data.
    let explain = p.run(&[
        "query",
        "explain select count(*) from daily_sales_by_region",
    ]);
    assert!(
        explain.stdout.contains("93 as count(*)"),
        "{}",
        explain.stdout
    );

    // `show` says how each asset is partitioned and reads its upstreams.
    let show = p.run(&["show", "revenue_to_date"]);
    for line in [
        "partitioned daily `date` from 2024-01-01 to 2024-01-31 (UTC)",
        "reads       daily_sales: the same partition",
        "            revenue_to_date (itself): the previous period",
        "columns     day DATE, revenue DOUBLE, revenue_to_date DOUBLE (declared)",
    ] {
        assert!(
            show.stdout.contains(line),
            "{line:?} not in\n{}",
            show.stdout
        );
    }
    let show = p.run(&["show", "rolling_7d"]);
    assert!(
        show.stdout
            .contains("reads       daily_sales: the 7 periods ending with this one"),
        "{}",
        show.stdout
    );

    // A late sale on the 20th: that day, the seven windows holding it, the
    // running total from the 20th on, the month and the 20th's region.
    let path = "data/sales/date=2024-01-20/sales.csv";
    let mut text = p.read(path);
    text.push_str("9999,us,100000,2024-01-20T23:59:00\n");
    p.write(path, &text);
    assert_eq!(stale_keys(&p, "daily_sales"), vec!["2024-01-20".to_owned()]);
    let rerun = p.json(&["materialize", "--format", "json"], 0);
    let committed = committed_by(&catalog(&p), rerun["run_id"].as_str().unwrap());
    let count = |asset: &str| committed.iter().filter(|(a, _)| a == asset).count();
    assert_eq!(count("daily_sales"), 1);
    assert_eq!(count("rolling_7d"), 7);
    assert_eq!(count("revenue_to_date"), 12);
    assert_eq!(count("month_summary"), 1);
    assert_eq!(count("daily_sales_by_region"), 3);
    assert_eq!(count("region_totals"), 1);
    let to_date = query_f64(
        &p,
        "select revenue_to_date from revenue_to_date where day = DATE '2024-01-31'",
        "revenue_to_date",
    );
    assert_dollars(
        to_date,
        month + 100_000,
        "revenue to date after the late sale",
    );
}
