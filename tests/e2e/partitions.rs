//! Partitions end to end: a daily source over a year, identity and rolling
//! window mappings, hive storage read by pyarrow, timezones across DST,
//! backfills killed and resumed, and partition input errors.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{Project, states};

const DAYS: usize = 366; // 2024 is a leap year

fn day(i: usize) -> String {
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    (start + chrono::TimeDelta::try_days(i as i64).unwrap())
        .format("%Y-%m-%d")
        .to_string()
}

fn source_partition(p: &Project, i: usize, extra: &str) {
    let d = day(i);
    let mut csv = String::from("event_date,amount\n");
    for j in 0..3 {
        csv.push_str(&format!("{d},{}\n", i * 10 + j));
    }
    csv.push_str(extra);
    p.write(&format!("data/events/date={d}/part.csv"), &csv);
}

/// A year of daily source partitions, a daily identity asset, a 7-day
/// rolling asset and an unpartitioned roll-up.
fn year_project() -> Project {
    let p = Project::with_files(&[
        (
            "cairn.toml",
            "[sources.raw_events]\npath = \"data/events\"\nformat = \"csv\"\npartitions = { type = \"daily\", start = \"2024-01-01\", end = \"2024-12-31\" }\n",
        ),
        (
            "assets/daily_sales.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-12-31\"\n\
             select cast(event_date as date) as event_date, sum(amount) as total, count(*) as n\nfrom raw_events\ngroup by 1",
        ),
        (
            "assets/rolling_7d.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-12-31\"\n\
             --- [upstream.daily_sales]\n--- mapping = \"window\"\n--- lag = 6\n\
             select {{start_date}} as day, sum(total) as total_7d, count(*) as days\nfrom daily_sales",
        ),
        (
            "assets/all_time.sql",
            "select sum(total) as total, count(*) as days from daily_sales",
        ),
    ]);
    for i in 0..DAYS {
        source_partition(&p, i, "");
    }
    p
}

pub(crate) fn catalog(p: &Project) -> rusqlite::Connection {
    rusqlite::Connection::open(p.path(".cairn/catalog.db")).unwrap()
}

pub(crate) fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// (asset, partition) committed by a run.
pub(crate) fn committed_by(db: &rusqlite::Connection, run_id: &str) -> Vec<(String, String)> {
    let mut stmt = db
        .prepare("select asset, \"partition\" from materializations where run_id = ?1 order by asset, \"partition\"")
        .unwrap();
    stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

pub(crate) fn partition_states(p: &Project, asset: &str) -> Vec<(String, String)> {
    let status = p.json(&["status", asset, "--partitions", "--format", "json"], 0);
    status["assets"][0]["partitions"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["key"].as_str().unwrap().to_owned(),
                u["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub(crate) fn stale_keys(p: &Project, asset: &str) -> Vec<String> {
    partition_states(p, asset)
        .into_iter()
        .filter(|(_, s)| s != "fresh")
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn a_year_of_daily_partitions_rebuilds_exactly_what_a_changed_day_maps_to() {
    let p = year_project();
    let first = p.json(
        &[
            "backfill",
            "daily_sales+",
            "--from",
            "2024-01-01",
            "--to",
            "2024-12-31",
            "--format",
            "json",
        ],
        0,
    );
    let db = catalog(&p);
    assert_eq!(
        count(
            &db,
            "select count(*) from current_versions where asset = 'daily_sales'"
        ),
        DAYS as i64
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from current_versions where asset = 'rolling_7d'"
        ),
        DAYS as i64
    );
    assert_eq!(first["planned"], 2 * DAYS + 1);
    let status = p.json(&["status", "--check", "--format", "json"], 0);
    assert_eq!(status["not_fresh"], 0);
    let summary = &states(&status)["daily_sales"];
    assert_eq!(summary.0, "fresh");

    // The rolling window saw exactly its seven days.
    let rolling =
        p.query_json("select days, total_7d from rolling_7d where day = DATE '2024-03-10'");
    assert_eq!(rolling[0]["days"], 7);
    let expected: usize = (63..=69).map(|i| 3 * (i * 10) + 3).sum();
    assert_eq!(rolling[0]["total_7d"], expected as i64);

    // Pruning, measured at the object store: each partition read exactly
    // the files of the partitions its mapping names (one per day).
    let reads = p.query_json("select asset, \"partition\", objects_read from cairn.cost \
             where (asset = 'rolling_7d' and \"partition\" in ('2024-01-01', '2024-01-03', '2024-03-10')) \
                or (asset = 'daily_sales' and \"partition\" = '2024-03-10') or asset = 'all_time' \
             order by asset, \"partition\"");
    let reads: Vec<(String, String, i64)> = reads
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["asset"].as_str().unwrap().to_owned(),
                r["partition"].as_str().unwrap().to_owned(),
                r["objects_read"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reads,
        vec![
            ("all_time".to_owned(), String::new(), DAYS as i64),
            ("daily_sales".to_owned(), "2024-03-10".to_owned(), 1),
            ("rolling_7d".to_owned(), "2024-01-01".to_owned(), 1),
            ("rolling_7d".to_owned(), "2024-01-03".to_owned(), 3),
            ("rolling_7d".to_owned(), "2024-03-10".to_owned(), 7),
        ]
    );

    // One day of source data changes: exactly that day of daily_sales and
    // the seven rolling windows containing it become stale.
    source_partition(&p, 69, "2024-03-10,1000\n");
    assert_eq!(stale_keys(&p, "daily_sales"), vec!["2024-03-10".to_owned()]);
    let rolling_stale = stale_keys(&p, "rolling_7d");
    assert_eq!(rolling_stale, (69..76).map(day).collect::<Vec<_>>());
    let text = p.run(&["status"]);
    assert!(
        text.stdout
            .contains("365 fresh, 1 stale: source raw_events changed"),
        "{}",
        text.stdout
    );

    let rerun = p.json(&["materialize", "--format", "json"], 0);
    let mut expected: Vec<(String, String)> = vec![
        ("all_time".into(), String::new()),
        ("daily_sales".into(), day(69)),
    ];
    expected.extend((69..76).map(|i| ("rolling_7d".to_owned(), day(i))));
    expected.sort();
    assert_eq!(
        committed_by(&db, rerun["run_id"].as_str().unwrap()),
        expected
    );
    assert_eq!(
        p.json(&["status", "--check", "--format", "json"], 0)["not_fresh"],
        0
    );
    let rolling = p.query_json("select total_7d from rolling_7d where day = DATE '2024-03-16'");
    let expected: usize = (69..=75).map(|i| 3 * (i * 10) + 3).sum::<usize>() + 1000;
    assert_eq!(rolling[0]["total_7d"], expected as i64);
}

#[test]
fn partitioned_output_is_hive_layout_readable_by_pyarrow() {
    let p = Project::with_files(&[
        ("cairn.toml", "[sources.sales]\npath = \"data/sales.csv\"\n"),
        (
            "data/sales.csv",
            "sold_on,region,amount\n2024-01-01,eu,1\n2024-01-01,us,2\n2024-01-02,eu,3\n2024-01-02,apac,4\n2024-01-03,us,5\n",
        ),
        (
            "assets/regional.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-01-03\"\n\
             --- [partitions.static]\n--- name = \"region\"\n--- values = [\"eu\", \"us\", \"apac\"]\n\
             select cast(sold_on as date) as sold_on, amount from sales\n\
             where cast(sold_on as date) >= {{start_date}} and cast(sold_on as date) < {{end_date}} and region = {{region}}",
        ),
    ]);
    let (_, outcomes) = p.materialize(&[]);
    assert_eq!(outcomes.len(), 9, "3 days x 3 regions: {outcomes:?}");
    let files = p.warehouse_files();
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("regional/date=2024-01-02/region=apac/")),
        "{files:?}"
    );
    let script = r#"
import sys, pyarrow.dataset as ds
t = ds.dataset(sys.argv[1], format="parquet", partitioning="hive").to_table()
rows = sorted((str(r["date"]), r["region"], r["amount"]) for r in t.to_pylist())
print(rows)
"#;
    assert_eq!(
        crate::util::python(script, [p.path("warehouse/regional")]).trim(),
        "[('2024-01-01', 'eu', 1), ('2024-01-01', 'us', 2), ('2024-01-02', 'apac', 4), ('2024-01-02', 'eu', 3), ('2024-01-03', 'us', 5)]"
    );
}

#[test]
fn new_york_days_cover_23_and_25_hours_across_dst() {
    // One event per UTC hour from 2024-03-09 to 2024-03-12 and around the
    // November change; a daily America/New_York partition counts its hours.
    let mut csv = String::from("ts\n");
    for (from, hours) in [("2024-03-09T00:00:00Z", 96), ("2024-11-02T00:00:00Z", 96)] {
        let start = chrono::DateTime::parse_from_rfc3339(from).unwrap();
        for h in 0..hours {
            csv.push_str(&format!(
                "{}\n",
                (start + chrono::TimeDelta::try_hours(h).unwrap()).format("%Y-%m-%dT%H:%M:%S")
            ));
        }
    }
    let p = Project::with_files(&[
        (
            "cairn.toml",
            "[sources.events]\npath = \"data/events.csv\"\n",
        ),
        ("data/events.csv", &csv),
        (
            "assets/ny_daily.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-03-10\"\n--- end = \"2024-11-03\"\n--- timezone = \"America/New_York\"\n\
             select count(*) as hours from events where cast(ts as timestamp) >= {{start}} and cast(ts as timestamp) < {{end}}",
        ),
    ]);
    let run = p.run(&[
        "backfill",
        "ny_daily",
        "--partitions",
        "2024-03-10,2024-03-11,2024-11-03",
        "--memory-limit",
        "64MB",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // Under a limit the backfill's report says it, in the unit given.
    assert!(
        run.stdout
            .contains("\nmemory: limit 64 MB, spilled 0 B, peak resident "),
        "{}",
        run.stdout
    );
    let hours = |d: &str| -> i64 {
        let v = p.json(
            &["status", "ny_daily", "--partitions", "--format", "json"],
            0,
        );
        let unit = v["assets"][0]["partitions"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["key"] == d)
            .cloned()
            .unwrap();
        let id = unit["current"]["id"].as_i64().unwrap();
        let db = catalog(&p);
        let path: String = db
            .query_row(
                "select path from materialization_files where materialization_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        crate::util::python(
            "import sys, pyarrow.parquet as pq; print(pq.read_table(sys.argv[1]).column('hours')[0].as_py())",
            [p.path("warehouse").join(path)],
        )
        .trim()
        .parse()
        .unwrap()
    };
    assert_eq!(hours("2024-03-10"), 23, "spring forward");
    assert_eq!(hours("2024-03-11"), 24);
    assert_eq!(hours("2024-11-03"), 25, "fall back");
}

#[test]
fn killed_backfill_resumes_and_commits_every_partition_exactly_once() {
    let p = year_project();
    let mut child = p
        .command(&[
            "backfill",
            "daily_sales",
            "--from",
            "2024-01-01",
            "--to",
            "2024-02-29",
            "--jobs",
            "1",
        ])
        .env("CAIRN_TEST_HANG_BEFORE_COMMIT", "daily_sales[2024-02-01]")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(Instant::now() < deadline, "never reached the hook");
        match lines.next() {
            Some(Ok(line)) if line.contains("hanging before commit") => break,
            Some(Ok(_)) => {}
            other => panic!("cairn ended before the hook: {other:?}"),
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let db = catalog(&p);
    let backfill_id: String = db
        .query_row("select id from backfills", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        count(&db, "select count(*) from current_versions"),
        31,
        "January committed before the kill"
    );

    let resumed = p.json(
        &["backfill", "--resume", &backfill_id, "--format", "json"],
        0,
    );
    assert_eq!(resumed["planned"], 60);
    assert_eq!(resumed["already_done"], 31);
    assert_eq!(
        count(&db, "select count(*) from materializations"),
        60,
        "every partition committed exactly once"
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from (select asset, \"partition\" from materializations group by 1, 2 having count(*) > 1)"
        ),
        0
    );
    let log = p.json(&["audit", "--log", "--format", "json"], 0);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"backfill") && actions.contains(&"backfill_resume"),
        "{actions:?}"
    );
    // Resuming a finished backfill does nothing.
    let again = p.json(
        &["backfill", "--resume", &backfill_id, "--format", "json"],
        0,
    );
    assert_eq!(again["already_done"], 60);
    assert!(again["run"]["run_id"].is_null());

    // Same data as an uninterrupted run.
    let q = "select event_date, total, n from daily_sales order by event_date";
    let resumed_rows = p.query_json(q);
    let clean = year_project();
    clean.json(
        &[
            "backfill",
            "daily_sales",
            "--from",
            "2024-01-01",
            "--to",
            "2024-02-29",
            "--format",
            "json",
        ],
        0,
    );
    assert_eq!(resumed_rows, clean.query_json(q));
}

fn expect_usage_error(p: &Project, args: &[&str], fragment: &str) {
    let run = p.run(args);
    assert_eq!(
        run.code, 2,
        "cairn {args:?}\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains(fragment),
        "cairn {args:?}: stderr lacks {fragment:?}:\n{}",
        run.stderr
    );
    assert!(!p.path("warehouse").exists(), "nothing may be run");
}

#[test]
fn partition_input_errors_are_clear_and_run_nothing() {
    let p = Project::with_files(&[
        ("cairn.toml", "[sources.raw]\npath = \"data/raw.csv\"\n"),
        ("data/raw.csv", "d,amount\n2024-01-01,1\n"),
        (
            "assets/daily.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-01-31\"\nselect * from raw",
        ),
    ]);
    expect_usage_error(
        &p,
        &["backfill", "daily", "--partitions", "2024-13-01"],
        "unknown partition key `2024-13-01`",
    );
    expect_usage_error(
        &p,
        &["backfill", "daily", "--partitions", "2023-12-31"],
        "outside the partitions",
    );
    expect_usage_error(
        &p,
        &[
            "backfill",
            "daily",
            "--from",
            "2024-01-20",
            "--to",
            "2024-01-10",
        ],
        "--from 2024-01-20 is after --to 2024-01-10",
    );
    expect_usage_error(&p, &["backfill", "--resume", "nope"], "no backfill `nope`");

    // Load-time mistakes: file:line, exit 2, nothing written.
    let cases: &[(&str, &str, &str)] = &[
        (
            "assets/bad.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- [upstream.raw]\n--- mapping = \"window\"\n--- lag = 6\nselect * from raw",
            "assets/bad.sql:5: `raw` is not partitioned, so a partition mapping to it makes no sense",
        ),
        (
            "assets/bad.sql",
            "--- [partitions]\n--- type = \"static\"\n--- values = [\"eu\", \"us\", \"EU\"]\nselect * from raw",
            "assets/bad.sql:3: static partition value `EU` is listed twice (values overlap)",
        ),
        (
            "assets/bad.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- timezone = \"Mars/Olympus\"\nselect * from raw",
            "assets/bad.sql:4: unknown timezone `Mars/Olympus`",
        ),
        (
            "assets/bad.sql",
            "--- [partitions]\n--- type = \"fortnightly\"\nselect * from raw",
            "assets/bad.sql:2: unknown partition type `fortnightly`",
        ),
        (
            "assets/bad.sql",
            "select * from raw where d >= {{start}}",
            "assets/bad.sql:1: `{{start}}` used, but this asset is not partitioned",
        ),
        (
            "assets/bad.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\nselect * from raw\nwhere d >= {{stat}}",
            "assets/bad.sql:5: unknown placeholder `{{stat}}`",
        ),
    ];
    for (file, content, fragment) in cases {
        let broken = Project::with_files(&[
            ("cairn.toml", "[sources.raw]\npath = \"data/raw.csv\"\n"),
            ("data/raw.csv", "d,amount\n2024-01-01,1\n"),
            (file, content),
        ]);
        expect_usage_error(&broken, &["materialize"], fragment);
        assert!(!broken.path(".cairn").exists());
    }
}

#[test]
fn rows_outside_their_partition_are_refused_before_commit() {
    let orders = "order_day,region,amount\n2024-01-01,eu,10\n2024-01-01,us,20\n2024-01-02,eu,30\n2024-01-03,us,40\n";
    let header = "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-01-03\"\n--- column = \"day\"\n\
                  --- [partitions.static]\n--- name = \"region\"\n--- values = [\"eu\", \"us\"]\n--- column = \"reg\"\n";
    // Forgot to filter by day: every partition holds other days' rows.
    let p = Project::with_files(&[
        (
            "cairn.toml",
            "[sources.orders]\npath = \"data/orders.csv\"\n",
        ),
        ("data/orders.csv", orders),
        (
            "assets/daily.sql",
            &format!(
                "{header}select cast(order_day as date) as day, region as reg, amount from orders where region = {{{{region}}}}"
            ),
        ),
    ]);
    let run = p.run(&["materialize"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("row(s) do not belong to partition 2024-01-01|eu: [partitions] requires `day` in [DATE '2024-01-01', DATE '2024-01-02')"),
        "{all}"
    );
    assert!(
        all.contains("where day >= {{start_date}} and day < {{end_date}}"),
        "{all}"
    );
    let db = catalog(&p);
    assert_eq!(count(&db, "select count(*) from materializations"), 0);

    // Filtered by day but with the region swapped: the static column is
    // checked too.
    p.write(
        "assets/daily.sql",
        &format!(
            "{header}select cast(order_day as date) as day, case when region = 'eu' then 'us' else 'eu' end as reg, amount from orders \
             where region = {{{{region}}}} and cast(order_day as date) >= {{{{start_date}}}} and cast(order_day as date) < {{{{end_date}}}}"
        ),
    );
    let run = p.run(&["materialize"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("requires `day` in"), "{all}");
    assert!(
        all.contains("and `reg` = 'eu' (e.g. 2024-01-01, us)"),
        "{all}"
    );
    // Only the two partitions with no rows at all (nothing to misplace)
    // committed.
    assert_eq!(
        count(
            &db,
            "select count(*) from materializations where row_count = 0"
        ),
        2
    );
    assert_eq!(count(&db, "select count(*) from materializations"), 2);

    // Right: every partition commits, with exactly its rows.
    p.write(
        "assets/daily.sql",
        &format!(
            "{header}select cast(order_day as date) as day, region as reg, amount from orders \
             where region = {{{{region}}}} and cast(order_day as date) >= {{{{start_date}}}} and cast(order_day as date) < {{{{end_date}}}}"
        ),
    );
    p.json(&["materialize", "--format", "json"], 0);
    assert_eq!(count(&db, "select count(*) from current_versions"), 6);
    let rows = p.query_json("select sum(amount) as total from daily");
    assert_eq!(rows[0]["total"], 100);
}

/// The object-store requests other than reads and writes (LIST, HEAD,
/// DELETE) of `asset`'s current version, and the objects it read.
fn other_requests(p: &Project, asset: &str) -> (u64, u64) {
    let shown = p.json(&["show", asset, "--format", "json"], 0);
    let m = &shown["current"]["metrics"];
    (
        m["other_requests"].as_u64().unwrap(),
        m["objects_read"].as_u64().unwrap(),
    )
}

/// Regression: registering a partitioned upstream sent one HEAD per
/// committed file (31 for a month of days, a round trip each on S3) though
/// the catalog records every file's size. Now the requests beside reads
/// and writes are the build's own (a HEAD of the written file and one when
/// reading it back), whatever the number of files read.
#[test]
fn reading_many_partitions_asks_the_store_for_no_file_sizes() {
    let p = Project::example_named("daily_sales");
    // Upstreams built earlier in the same run; then their current versions
    // (and the previous version, read for rows added and removed).
    for args in [&[][..], &["--force", "month_summary", "region_totals"]] {
        p.materialize(args);
        assert_eq!(
            other_requests(&p, "month_summary"),
            (2, 31),
            "{args:?}: a file a day"
        );
        assert_eq!(
            other_requests(&p, "region_totals"),
            (2, 93),
            "{args:?}: a file a day and region"
        );
    }
}
