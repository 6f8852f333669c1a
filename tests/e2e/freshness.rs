//! Freshness SLAs end to end: a daily partition late past `warn_after`
//! and `fail_after` after its window closed (text, JSON, `status --check`)
//! and cleared by building it; an unpartitioned asset never built, then
//! stale since its source changed. Time is `CAIRN_NOW`.

use serde_json::Value;

use crate::util::{Project, Run};

/// `daily` (warn 2h, fail 6h) over a daily source through 2024-01-05;
/// `total` (fail 6h) rolls the days up.
fn project() -> Project {
    let p = Project::with_files(&[
        (
            "cairn.toml",
            "[sources.events]\npath = \"data/events\"\nformat = \"csv\"\npartitions = { type = \"daily\", start = \"2024-01-01\", end = \"2024-01-05\" }\n",
        ),
        (
            "assets/daily.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-01-05\"\n\
             --- [freshness]\n--- warn_after = \"2h\"\n--- fail_after = \"6h\"\n\
             select sum(n) as n from events",
        ),
        (
            "assets/total.sql",
            "--- [freshness]\n--- fail_after = \"6h\"\nselect sum(n) as n from daily",
        ),
    ]);
    for day in 1..=5 {
        p.write(
            &format!("data/events/date=2024-01-0{day}/e.csv"),
            &format!("n\n{day}\n"),
        );
    }
    p
}

fn at(p: &Project, now: &str, args: &[&str]) -> Run {
    Run::from(p.command(args).env("CAIRN_NOW", now).output().unwrap())
}

fn json_at(p: &Project, now: &str, args: &[&str], code: i32) -> Value {
    let run = at(p, now, args);
    assert_eq!(
        run.code, code,
        "cairn {args:?} at {now}\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout))
}

fn asset<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {status}"))
}

/// The acceptance test: built on the 5th at noon; 3 h after the 5th
/// closed it warns (and `--check` passes), 7 h after it fails its SLA
/// (text, JSON, `--check` exits 1); building the day clears it.
#[test]
fn a_late_day_warns_then_fails_its_sla_until_built() {
    let p = project();
    let run = at(&p, "2024-01-05T12:00:00Z", &["materialize"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let check = at(&p, "2024-01-05T12:00:00Z", &["status", "--check"]);
    assert_eq!(check.code, 0, "{}", check.stdout);

    // 3 h after the 5th closed: a warning, not a failure.
    let warn = "2024-01-06T03:00:00Z";
    let text = at(&p, warn, &["status", "--check"]);
    assert_eq!(text.code, 0, "a warning passes --check:\n{}", text.stdout);
    assert!(
        text.stdout
            .contains("sla warn: 2024-01-05 not built 3h after its window closed (warn_after 2h)"),
        "{}",
        text.stdout
    );
    let status = json_at(&p, warn, &["status", "--format", "json"], 0);
    assert_eq!(asset(&status, "daily")["health"], "warn");
    assert_eq!(asset(&status, "total")["health"], "ok");
    assert_eq!(
        (status["sla_failed"].as_u64(), status["sla_warn"].as_u64()),
        (Some(0), Some(1))
    );

    // 7 h after: the SLA is failed, for the day and for the roll-up
    // missing it.
    let late = "2024-01-06T07:00:00Z";
    let text = at(&p, late, &["status", "--check"]);
    assert_eq!(text.code, 1, "{}", text.stdout);
    assert!(
        text.stdout.contains(
            "sla failed: 2024-01-05 not built 7h after its window closed (fail_after 6h)"
        ),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("sla failed: stale for 7h (fail_after 6h)"),
        "total is behind since the day closed:\n{}",
        text.stdout
    );
    let status = json_at(
        &p,
        late,
        &["status", "--partitions", "--format", "json", "--check"],
        1,
    );
    let daily = asset(&status, "daily");
    assert_eq!(daily["health"], "sla_failed");
    assert_eq!(daily["freshness"]["warn_after_seconds"], 7200);
    assert_eq!(daily["freshness"]["fail_after_seconds"], 21600);
    let overdue = &daily["partitions"]["most_overdue"];
    assert_eq!(overdue["key"], "2024-01-05");
    assert_eq!(overdue["level"], "failed");
    assert_eq!(overdue["basis"], "not_built");
    assert_eq!(overdue["since"], "2024-01-06T00:00:00Z");
    assert_eq!(overdue["age_seconds"], 7 * 3600);
    let day5 = daily["partitions"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["key"] == "2024-01-05")
        .unwrap();
    assert_eq!(day5["health"], "sla_failed");
    assert_eq!(day5["sla"]["age_seconds"], 7 * 3600);
    let earlier = &daily["partitions"]["list"][0];
    assert_eq!(
        (&earlier["health"], &earlier["sla"]),
        (&"ok".into(), &Value::Null)
    );
    assert_eq!(asset(&status, "total")["sla"]["level"], "failed");
    assert_eq!(
        (status["sla_failed"].as_u64(), status["sla_warn"].as_u64()),
        (Some(2), Some(0))
    );

    // Building the late day clears it; `total` is stale since `daily`
    // committed (just now, by the real clock: after CAIRN_NOW, so age
    // zero) and within its SLA.
    let run = at(
        &p,
        late,
        &[
            "backfill",
            "daily",
            "--from",
            "2024-01-05",
            "--to",
            "2024-01-05",
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let status = json_at(&p, late, &["status", "--format", "json", "--check"], 0);
    assert_eq!(asset(&status, "daily")["health"], "ok");
    assert_eq!(asset(&status, "daily")["state"], "fresh");
    assert_eq!(asset(&status, "total")["state"], "stale");
    assert_eq!(asset(&status, "total")["sla"]["level"], "ok");
    let text = at(&p, late, &["status", "--check"]);
    assert_eq!(text.code, 0, "{}", text.stdout);
    assert!(!text.stdout.contains("sla "), "{}", text.stdout);
}

/// An unpartitioned asset: never built fails its SLA at once; built, it
/// is within it however old; stale, its clock runs from when the source's
/// new content was first seen.
#[test]
fn an_unpartitioned_asset_never_built_then_stale_since_its_source_changed() {
    let p = Project::with_files(&[
        ("cairn.toml", "[sources.raw]\npath = \"data/raw.csv\"\n"),
        ("data/raw.csv", "n\n1\n"),
        (
            "assets/lookup.sql",
            "--- [freshness]\n--- fail_after = \"6h\"\nselect n from raw",
        ),
    ]);
    let text = p.run(&["status", "--check"]);
    assert_eq!(text.code, 1, "{}", text.stdout);
    assert!(
        text.stdout
            .contains("sla failed: never materialized (fail_after 6h)"),
        "{}",
        text.stdout
    );
    let status = p.json(&["status", "--format", "json", "--check"], 1);
    let sla = &asset(&status, "lookup")["sla"];
    assert_eq!(
        (&sla["basis"], &sla["since"], &sla["age_seconds"]),
        (&"never_built".into(), &Value::Null, &Value::Null)
    );

    p.materialize(&[]);
    assert_eq!(p.run(&["status", "--check"]).code, 0);
    // Fresh, a week later: rebuilding would give the same data.
    let in_a_week = (chrono::Utc::now() + chrono::TimeDelta::try_days(7).unwrap()).to_rfc3339();
    assert_eq!(at(&p, &in_a_week, &["status", "--check"]).code, 0);

    // The source changes: stale, first seen now, within the SLA.
    p.write("data/raw.csv", "n\n2\n");
    let seen = chrono::Utc::now();
    let status = p.json(&["status", "--format", "json", "--check"], 0);
    let lookup = asset(&status, "lookup");
    assert_eq!(
        (&lookup["state"], &lookup["health"]),
        (&"stale".into(), &"ok".into())
    );
    // Seven hours after it was first seen (and long after the commit).
    let later = (seen + chrono::TimeDelta::try_hours(7).unwrap()).to_rfc3339();
    let text = at(&p, &later, &["status", "--check"]);
    assert_eq!(text.code, 1, "{}", text.stdout);
    assert!(
        text.stdout.contains("sla failed: stale for 6h 59m")
            || text.stdout.contains("sla failed: stale for 7h"),
        "{}",
        text.stdout
    );
    let status = json_at(&p, &later, &["status", "--format", "json"], 0);
    let age = asset(&status, "lookup")["sla"]["age_seconds"]
        .as_u64()
        .unwrap();
    assert!((6 * 3600 + 3540..=7 * 3600).contains(&age), "{age}");

    p.materialize(&[]);
    assert_eq!(at(&p, &later, &["status", "--check"]).code, 0);
}
