//! `cairn tick`: cron schedules across DST fire exactly once per instant,
//! a tick is never repeated nor lost (same instant twice, a process killed
//! between enqueue and run), and eager automation builds exactly what a
//! source change affects, debounced by `lag`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::util::Project;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn tick(p: &Project, at: DateTime<Utc>) -> Value {
    let run = p.run(&["tick", "--at", &at.to_rfc3339(), "--format", "json"]);
    assert_eq!(run.code, 0, "tick at {at}: {}\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// The cron instants each tick found due, per asset.
fn due(report: &Value) -> Vec<(String, DateTime<Utc>)> {
    report["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["condition"] == "cron" && !c["due"].is_null())
        .map(|c| {
            (
                c["asset"].as_str().unwrap().to_owned(),
                utc(c["due"].as_str().unwrap()),
            )
        })
        .collect()
}

#[test]
fn cron_fires_once_per_instant_across_dst_days() {
    let p = Project::with_files(&[
        ("cairn.toml", ""),
        (
            "assets/daily.sql",
            "--- [automation]\n--- cron = \"30 2 * * *\"\n--- timezone = \"America/New_York\"\nselect 1 as x",
        ),
        (
            "assets/hourly.sql",
            "--- [automation]\n--- cron = \"0 * * * *\"\n--- timezone = \"America/New_York\"\nselect 2 as x",
        ),
    ]);
    let ny = chrono_tz::America::New_York;
    for (day, hourly_count, daily_local) in [
        // Spring forward: 02:30 does not exist; it fires at 03:00 EDT.
        ("2026-03-08", 23, "2026-03-08T03:00:00-04:00"),
        // Fall back: 01:00-02:00 happens twice; 02:30 exists once.
        ("2026-11-01", 25, "2026-11-01T02:30:00-05:00"),
    ] {
        // Every 15 minutes from local midnight to past the next one.
        let midnight = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let start = midnight
            .and_local_timezone(ny)
            .single()
            .unwrap()
            .with_timezone(&Utc);
        let end = start + TimeDelta::try_hours(25).unwrap();
        let mut fired: BTreeMap<String, Vec<DateTime<Utc>>> = BTreeMap::new();
        let mut at = start;
        while at <= end {
            for (asset, instant) in due(&tick(&p, at)) {
                fired.entry(asset).or_default().push(instant);
            }
            // The same instant again fires nothing.
            if at == start + TimeDelta::try_hours(3).unwrap() {
                assert!(
                    due(&tick(&p, at)).is_empty(),
                    "{at} ticked twice fired again"
                );
            }
            at += TimeDelta::try_minutes(15).unwrap();
        }
        let on_day = |v: &[DateTime<Utc>]| -> Vec<DateTime<Utc>> {
            v.iter()
                .copied()
                .filter(|t| t.with_timezone(&ny).date_naive().to_string() == day)
                .collect()
        };
        let daily = on_day(fired.get("daily").map(Vec::as_slice).unwrap_or_default());
        assert_eq!(daily, [utc(daily_local)], "{day}");
        let hourly = on_day(fired.get("hourly").map(Vec::as_slice).unwrap_or_default());
        assert_eq!(hourly.len(), hourly_count, "{day}: {hourly:?}");
        let mut unique = hourly.clone();
        unique.dedup();
        assert_eq!(
            unique.len(),
            hourly.len(),
            "an instant fired twice: {hourly:?}"
        );
    }
}

#[test]
fn a_tick_killed_between_enqueue_and_run_is_neither_lost_nor_repeated() {
    let p = Project::with_files(&[
        ("cairn.toml", ""),
        (
            "assets/report.sql",
            "--- [automation]\n--- cron = \"0 6 * * *\"\nselect 42 as answer",
        ),
    ]);
    // The first tick at 06:00 starts the record and fires (nothing was ever built).
    let mut child = p
        .command(&["tick", "--at", "2026-05-01T06:00:00Z"])
        .env("CAIRN_TEST_HANG_BEFORE_COMMIT", "report")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the hook: the run is queued and running, nothing committed.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            panic!("tick ended before the hook: {seen}");
        }
        seen.push_str(&line);
        if line.contains("hanging before commit") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        p.query_json("select count(*) as n from cairn.materializations")[0]["n"],
        0
    );

    // The same instant again: not fired again; the interrupted run is
    // resumed by this tick's drain of the queue.
    let again = tick(&p, utc("2026-05-01T06:00:00Z"));
    assert!(due(&again).is_empty(), "{again}");
    let built = p.query_json("select asset, run_id from cairn.materializations");
    assert_eq!(built.as_array().unwrap().len(), 1, "{built}");
    let runs =
        p.query_json("select run_id, status, trigger from cairn.runs where trigger = 'automation'");
    assert_eq!(
        runs.as_array().unwrap().len(),
        1,
        "one run for the instant: {runs}"
    );
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["run_id"], built[0]["run_id"]);

    // The next day's instant fires; the asset is fresh, so nothing is built.
    let next = tick(&p, utc("2026-05-02T06:05:00Z"));
    assert_eq!(due(&next).len(), 1, "{next}");
    assert!(next["run_id"].is_null(), "{next}");
    let cron = next["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["condition"] == "cron")
        .unwrap()
        .clone();
    assert!(
        cron["reason"].as_str().unwrap().contains("nothing stale"),
        "{cron}"
    );
    assert_eq!(
        p.query_json("select count(*) as n from cairn.materializations")[0]["n"],
        1
    );
}

#[test]
fn a_source_change_builds_exactly_its_readers_partitions_once_debounced_by_lag() {
    let p = Project::example_named("daily_sales");
    let file = "assets/daily_sales.sql";
    let sql = p.read(file);
    p.write(
        file,
        &sql.replacen(
            "--- [partitions]",
            "--- [automation]\n--- on_upstream_change = true\n--- lag = \"1h\"\n--- [partitions]",
            1,
        ),
    );
    p.materialize(&["--jobs", "2"]);
    let versions = |p: &Project| -> BTreeMap<String, u64> {
        p.query_json(
            "select partition, count(*) as n from cairn.materializations where asset = 'daily_sales' group by partition",
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["partition"].as_str().unwrap().to_owned(), r["n"].as_u64().unwrap()))
        .collect()
    };
    let before = versions(&p);
    assert!(before.values().all(|n| *n == 1), "{before:?}");

    let append = |day: &str| {
        let dir = p.path(&format!("data/sales/date={day}"));
        let csv = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "csv"))
            .unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        let last = text.lines().last().unwrap().to_owned();
        std::fs::write(&csv, format!("{text}{last}\n")).unwrap();
    };
    let t0 = utc("2024-02-10T12:00:00Z");
    let quiet = tick(&p, t0);
    assert!(quiet["run_id"].is_null(), "nothing changed yet: {quiet}");

    append("2024-01-03");
    let first = tick(&p, t0 + TimeDelta::try_minutes(5).unwrap());
    let requested: Vec<&str> = first["requested"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["partition"].as_str().unwrap())
        .collect();
    assert_eq!(requested, ["2024-01-03"], "{first}");
    assert_eq!(first["run_status"], "succeeded");
    let after = versions(&p);
    assert_eq!(after["2024-01-03"], 2);
    assert_eq!(
        after.values().sum::<u64>(),
        before.values().sum::<u64>() + 1
    );

    // A second change ten minutes later waits for the lag.
    append("2024-01-04");
    let debounced = tick(&p, t0 + TimeDelta::try_minutes(15).unwrap());
    assert!(debounced["run_id"].is_null(), "{debounced}");
    let eager = debounced["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["condition"] == "on_upstream_change")
        .unwrap()
        .clone();
    assert!(
        eager["reason"].as_str().unwrap().contains("debounced"),
        "{eager}"
    );
    assert_eq!(versions(&p), after);
    // Once the hour has passed, it is built — once.
    let later = tick(&p, t0 + TimeDelta::try_minutes(66).unwrap());
    assert_eq!(later["run_status"], "succeeded", "{later}");
    let last = versions(&p);
    assert_eq!(last["2024-01-04"], 2);
    assert_eq!(last["2024-01-03"], 2);
    let again = tick(&p, t0 + TimeDelta::try_minutes(200).unwrap());
    assert!(again["run_id"].is_null(), "{again}");
    // Every evaluation is on record, as SQL.
    let fired = p.query_json(
        "select count(*) as n from cairn.evaluations where condition = 'on_upstream_change' and fired",
    );
    assert_eq!(fired[0]["n"], 2, "{fired}");
    let all = p.query_json("select count(*) as n from cairn.evaluations");
    assert_eq!(all[0]["n"], 5, "one condition per tick: {all}");
}

#[test]
fn a_tick_sent_to_a_server_queues_its_run_there() {
    let p = Project::with_files(&[
        ("cairn.toml", "[server]\ntick_seconds = 3600\n"),
        (
            "assets/hourly.sql",
            "--- [automation]\n--- cron = \"0 * * * *\"\nselect 7 as x",
        ),
    ]);
    let server = crate::server::Server::start(&p);
    // The server's own first tick (now) starts the record; the next full
    // hour is due.
    let next_hour = {
        let now = Utc::now() + TimeDelta::try_hours(1).unwrap();
        now.date_naive()
            .and_hms_opt(chrono::Timelike::hour(&now), 0, 0)
            .unwrap()
            .and_utc()
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    let elsewhere = tempfile::tempdir().unwrap();
    let run = crate::util::Run::from(
        std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .current_dir(elsewhere.path())
            .env_remove("CAIRN_NOW")
            .args([
                "--server",
                &server.addr,
                "tick",
                "--at",
                &next_hour.to_rfc3339(),
            ])
            .args(["--format", "json"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(due(&report).len(), 1, "{report}");
    let run_id = report["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{report}"));
    let events = server.call_lines("WatchRun", &format!(r#"{{"run_id": "{run_id}"}}"#));
    assert_eq!(events.last().unwrap()["status"], "succeeded", "{events:?}");
    server.stop();
}
