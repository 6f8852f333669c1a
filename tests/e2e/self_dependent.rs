//! An asset reading its own earlier partitions (a running balance): its
//! partitions run in time order even with parallel jobs, a change in one
//! day restales exactly the days after it, early cutoff stops the chain,
//! and the mistakes around self reads are clear errors that run nothing.

use crate::partitions::{catalog, committed_by, partition_states, stale_keys};
use crate::util::{Project, assert_refused};

const DAYS: usize = 30;

fn day(i: usize) -> String {
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    (start + chrono::TimeDelta::try_days(i as i64).unwrap())
        .format("%Y-%m-%d")
        .to_string()
}

/// Day `i`'s orders: amounts `i+1` and `100`, plus `extra` lines.
fn orders_csv(i: usize, extra: &[u64]) -> String {
    let d = day(i);
    let mut csv = format!("order_day,amount\n{d},{}\n{d},100\n", i + 1);
    for e in extra {
        csv.push_str(&format!("{d},{e}\n"));
    }
    csv
}

const CONFIG: &str = "[sources.orders]\npath = \"data/orders\"\nformat = \"csv\"\npartitions = { type = \"daily\", start = \"2024-01-01\", end = \"2024-01-30\" }\n";

/// `balance` = yesterday's balance + today's orders.
const BALANCE: &str = "--- [partitions]
--- type = \"daily\"
--- start = \"2024-01-01\"
--- end = \"2024-01-30\"
--- [upstream.balance]
--- mapping = \"window\"
--- offset = -1
--- [columns]
--- day = \"DATE\"
--- total = \"BIGINT\"
--- days = \"BIGINT\"
select {{start_date}} as day,
       (select sum(amount) from orders) + coalesce((select max(total) from balance), 0) as total,
       coalesce((select max(days) from balance), 0) + 1 as days
";

fn balance_project() -> Project {
    let p = Project::with_files(&[("cairn.toml", CONFIG), ("assets/balance.sql", BALANCE)]);
    for i in 0..DAYS {
        p.write(
            &format!("data/orders/date={}/part.csv", day(i)),
            &orders_csv(i, &[]),
        );
    }
    p
}

/// `(day, total, days)` of every committed partition, in day order.
fn balances(p: &Project) -> Vec<(String, i64, i64)> {
    let rows =
        p.query_json("select cast(day as varchar) as day, total, days from balance order by day");
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["day"].as_str().unwrap().to_owned(),
                r["total"].as_i64().unwrap(),
                r["days"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The running balance computed here from per-day order sums.
fn expected(day_sums: &[i64]) -> Vec<(String, i64, i64)> {
    let mut total = 0;
    day_sums
        .iter()
        .enumerate()
        .map(|(i, s)| {
            total += s;
            (day(i), total, i as i64 + 1)
        })
        .collect()
}

fn base_sums() -> Vec<i64> {
    (0..DAYS).map(|i| i as i64 + 1 + 100).collect()
}

#[test]
fn running_balance_reads_its_previous_day_in_time_order() {
    let p = balance_project();
    let first = p.json(
        &[
            "backfill",
            "balance",
            "--from",
            &day(0),
            "--to",
            &day(DAYS - 1),
            "--jobs",
            "4",
            "--format",
            "json",
        ],
        0,
    );
    assert_eq!(first["planned"], DAYS);
    assert_eq!(balances(&p), expected(&base_sums()));

    // Each day was committed after the day it reads (commit order = time
    // order, with four jobs allowed).
    let db = catalog(&p);
    let mut stmt = db
        .prepare("select \"partition\" from materializations where asset = 'balance' order by id")
        .unwrap();
    let order: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(order, (0..DAYS).map(day).collect::<Vec<_>>());

    // Day 10's orders change: day 10 is stale because of the source, every
    // later day because the day before it is stale; earlier days are fresh.
    p.write(
        &format!("data/orders/date={}/part.csv", day(10)),
        &orders_csv(10, &[1000]),
    );
    assert_eq!(
        stale_keys(&p, "balance"),
        (10..DAYS).map(day).collect::<Vec<_>>()
    );
    let status = p.json(
        &["status", "balance", "--partitions", "--format", "json"],
        0,
    );
    let list = status["assets"][0]["partitions"]["list"]
        .as_array()
        .unwrap();
    assert_eq!(list[10]["causes"][0]["cause"], "source_changed");
    assert_eq!(list[11]["causes"][0]["cause"], "earlier_partition_stale");
    let text = p.run(&["status"]);
    assert!(
        text.stdout
            .contains("10 fresh, 20 stale: source orders changed, an earlier partition is stale"),
        "{}",
        text.stdout
    );

    // The rerun rebuilds exactly days 10..29, in order, with new totals.
    let rerun = p.json(&["materialize", "--jobs", "4", "--format", "json"], 0);
    assert_eq!(
        committed_by(&db, rerun["run_id"].as_str().unwrap()),
        (10..DAYS)
            .map(|i| ("balance".to_owned(), day(i)))
            .collect::<Vec<_>>()
    );
    let mut sums = base_sums();
    sums[10] += 1000;
    assert_eq!(balances(&p), expected(&sums));
    assert!(
        partition_states(&p, "balance")
            .iter()
            .all(|(_, s)| s == "fresh")
    );

    // Same rows in another order: day 10 is rebuilt with identical data and
    // early cutoff keeps every later day.
    p.write(
        &format!("data/orders/date={}/part.csv", day(10)),
        &format!("order_day,amount\n{0},1000\n{0},100\n{0},11\n", day(10)),
    );
    let cutoff = p.json(&["materialize", "--format", "json"], 0);
    assert_eq!(
        committed_by(&db, cutoff["run_id"].as_str().unwrap()),
        vec![("balance".to_owned(), day(10))]
    );
    let later: Vec<&serde_json::Value> = cutoff["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["partition"].as_str() > Some(day(10).as_str()))
        .collect();
    assert_eq!(later.len(), DAYS - 11);
    assert!(later.iter().all(|r| r["early_cutoff"] == true), "{cutoff}");
    assert_eq!(balances(&p), expected(&sums));
}

#[test]
fn a_late_partition_brings_its_missing_earlier_days_along() {
    let p = balance_project();
    // Asking for day 5 alone runs days 0..5: each needs the one before.
    let report = p.json(
        &[
            "backfill",
            "balance",
            "--partitions",
            &day(5),
            "--format",
            "json",
        ],
        0,
    );
    assert_eq!(
        committed_by(&catalog(&p), report["run"]["run_id"].as_str().unwrap()),
        (0..6)
            .map(|i| ("balance".to_owned(), day(i)))
            .collect::<Vec<_>>()
    );
    assert_eq!(balances(&p), expected(&base_sums()[..6]));
}

#[test]
fn lineage_shows_the_self_read_once() {
    let p = balance_project();
    let run = p.run(&["lineage", "balance"]);
    assert!(
        run.stdout
            .contains("reads its own earlier partitions (1 period(s) back)"),
        "{}",
        run.stdout
    );
    let run = p.run(&["lineage", "balance", "--column", "total"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.lines().collect::<Vec<_>>(),
        vec![
            "balance.total",
            "  balance.total [earlier partitions]  (aggregate)",
            "  orders.amount [source]  (aggregate)",
        ],
        "{}",
        run.stdout
    );
}

/// `materialize` is refused (exit 2, the fragments on stderr) and writes
/// nothing.
fn refused(files: &[(&str, &str)], fragments: &[&str]) {
    let p = Project::with_files(files);
    p.write(
        &format!("data/orders/date={}/part.csv", day(0)),
        &orders_csv(0, &[]),
    );
    assert_refused(&p, &["materialize"], fragments);
    assert!(p.warehouse_files().is_empty(), "{:?}", p.warehouse_files());
}

#[test]
fn self_reads_that_cannot_work_are_refused_before_anything_runs() {
    // No mapping: reading the same partition would be a cycle.
    refused(
        &[
            ("cairn.toml", CONFIG),
            (
                "assets/balance.sql",
                &BALANCE.replace(
                    "--- [upstream.balance]\n--- mapping = \"window\"\n--- offset = -1\n",
                    "",
                ),
            ),
        ],
        &[
            "assets/balance.sql:10: `balance` reads its own table without saying which earlier partitions",
            "mapping = \"window\" and offset = -1",
        ],
    );
    // Offset 0 is the partition itself.
    refused(
        &[
            ("cairn.toml", CONFIG),
            (
                "assets/balance.sql",
                &BALANCE.replace("offset = -1", "offset = 0"),
            ),
        ],
        &[
            "`balance` reads its own partitions with offset = 0",
            "use a negative offset",
        ],
    );
    // An unpartitioned asset has no earlier partitions.
    refused(
        &[
            ("cairn.toml", CONFIG),
            (
                "assets/total.sql",
                "select count(*) as n from orders\nunion all\nselect n from total",
            ),
        ],
        &[
            "assets/total.sql:3: `total` reads its own table; only a time-partitioned asset may read itself",
        ],
    );
    // Nothing committed and no [columns]: the first day cannot plan.
    let undeclared = BALANCE.replace(
        "--- [columns]\n--- day = \"DATE\"\n--- total = \"BIGINT\"\n--- days = \"BIGINT\"\n",
        "",
    );
    refused(
        &[("cairn.toml", CONFIG), ("assets/balance.sql", &undeclared)],
        &[
            "assets/balance.sql:9: `balance` reads its own earlier partitions, but none is committed yet",
            "--- [columns]",
        ],
    );
    // A declared type the query does not return.
    refused(
        &[
            ("cairn.toml", CONFIG),
            (
                "assets/balance.sql",
                &BALANCE.replace("day = \"DATE\"", "day = \"TIMESTAMP\""),
            ),
        ],
        &[
            "assets/balance.sql:9: column `day` is declared TIMESTAMP (Timestamp(ns)) but the query returns Date32",
            "CAST(... AS TIMESTAMP) AS day",
        ],
    );
    // A type DataFusion does not know.
    refused(
        &[
            ("cairn.toml", CONFIG),
            (
                "assets/balance.sql",
                &BALANCE.replace("total = \"BIGINT\"", "total = \"BIGNUM\""),
            ),
        ],
        &["assets/balance.sql:10: column `total`: `BIGNUM` is not a SQL type"],
    );
}

#[test]
fn date_by_region_reads_its_own_earlier_days_of_the_same_region() {
    let p = Project::with_files(&[
        (
            "cairn.toml",
            "[sources.orders]\npath = \"data/orders\"\nformat = \"csv\"\npartitions = { type = \"daily\", start = \"2024-01-01\", end = \"2024-01-05\" }\n",
        ),
        (
            "assets/balance.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-01-05\"\n\
             --- [partitions.static]\n--- name = \"region\"\n--- values = [\"eu\", \"us\"]\n\
             --- [upstream.balance]\n--- mapping = \"window\"\n--- offset = -1\n--- lag = 1\n\
             --- [columns]\n--- day = \"DATE\"\n--- reg = \"VARCHAR\"\n--- total = \"BIGINT\"\n\
             select {{start_date}} as day, {{region}} as reg,\n\
             (select sum(amount) from orders where region = {{region}}) + coalesce((select max(total) from balance), 0) as total",
        ),
    ]);
    for d in 1..=5 {
        p.write(
            &format!("data/orders/date=2024-01-0{d}/part.csv"),
            &format!("region,amount\neu,{d}\nus,100\n"),
        );
    }
    p.json(&["materialize", "--jobs", "3", "--format", "json"], 0);
    let rows = p.query_json("select reg, total from balance order by reg, day");
    let got: Vec<(String, i64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["reg"].as_str().unwrap().to_owned(),
                r["total"].as_i64().unwrap(),
            )
        })
        .collect();
    // Each region accumulates only its own orders (the static dimension
    // maps by identity), and the window of two earlier days includes the
    // running total of the day before.
    let expected: Vec<(String, i64)> = [1, 3, 6, 10, 15]
        .iter()
        .map(|t| ("eu".to_owned(), *t))
        .chain(
            [100, 200, 300, 400, 500]
                .iter()
                .map(|t| ("us".to_owned(), *t)),
        )
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn once_committed_the_columns_need_not_be_declared() {
    let p = balance_project();
    p.json(&["materialize", "--format", "json"], 0);
    // Without [columns], the table it reads takes the committed schema.
    p.write(
        "assets/balance.sql",
        &BALANCE.replace(
            "--- [columns]\n--- day = \"DATE\"\n--- total = \"BIGINT\"\n--- days = \"BIGINT\"\n",
            "",
        ),
    );
    let rerun = p.json(&["materialize", "--format", "json"], 0);
    assert_eq!(
        committed_by(&catalog(&p), rerun["run_id"].as_str().unwrap()).len(),
        DAYS,
        "the code changed: every day is rebuilt"
    );
    assert_eq!(balances(&p), expected(&base_sums()));
}
