//! The partitioned example project (`examples/daily_sales`) runs end to
//! end as its README says, and its numbers agree with the source files
//! summed here independently.

use std::collections::BTreeMap;

use crate::partitions::{catalog, committed_by, stale_keys};
use crate::util::Project;

/// Revenue in cents per day, read from the example's CSV files.
fn cents_per_day(p: &Project) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(p.path("data/sales")).unwrap() {
        let dir = entry.unwrap().path();
        let day = dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("date=")
            .to_owned();
        let text = std::fs::read_to_string(dir.join("sales.csv")).unwrap();
        let cents: i64 = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(2).unwrap().parse::<i64>().unwrap())
            .sum();
        out.insert(day, cents);
    }
    out
}

fn query_f64(p: &Project, sql: &str, column: &str) -> f64 {
    let rows = p.json(&["query", "--format", "json", sql], 0);
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

    let cents = cents_per_day(&p);
    assert_eq!(cents.len(), 31);
    let month: i64 = cents.values().sum();
    let to_date = query_f64(
        &p,
        "select revenue_to_date from revenue_to_date where day = DATE '2024-01-31'",
        "revenue_to_date",
    );
    assert!(
        (to_date - month as f64 / 100.0).abs() < 0.005,
        "{to_date} vs {month}"
    );
    let summary = query_f64(&p, "select revenue from month_summary", "revenue");
    assert!((summary - month as f64 / 100.0).abs() < 0.005);
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
    assert!(
        (rolling - week as f64 / 100.0).abs() < 0.005,
        "{rolling} vs {week}"
    );

    // The region is a column of the date x region table (from its
    // `region=` folders), so an unpartitioned asset can group by it.
    let by_region = p.json(
        &[
            "query",
            "--format",
            "json",
            "select region, revenue from region_totals order by region",
        ],
        0,
    );
    let mut expected_regions: BTreeMap<String, i64> = BTreeMap::new();
    for entry in std::fs::read_dir(p.path("data/sales")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path().join("sales.csv")).unwrap();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            *expected_regions.entry(fields[1].to_owned()).or_default() +=
                fields[2].parse::<i64>().unwrap();
        }
    }
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
        let cents = expected_regions[region];
        assert!(
            (revenue - cents as f64 / 100.0).abs() < 0.005,
            "{region}: {revenue} vs {cents}"
        );
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
    assert!((to_date - (month + 100_000) as f64 / 100.0).abs() < 0.005);
}
