//! Every user mistake in a project: one clear error naming file and line
//! with a hint, exit code 2, and nothing written (no outputs, no catalog).

use crate::util::{Project, assert_refused};

const TOML: &str = "[sources.raw_orders]\npath = \"data/raw_orders.csv\"\n";
const CSV: &str = "id,customer_id,amount\n1,1,10\n2,1,20\n";

/// Runs `materialize` and `status` on a broken project; both must fail with
/// exit 2, write nothing, and print every expected fragment.
fn check(files: &[(&str, &str)], expected: &[&str]) {
    let p = Project::with_files(files);
    for args in [&["materialize"][..], &["status"][..]] {
        assert_refused(&p, args, expected);
        assert!(!p.path("warehouse").exists(), "nothing may be written");
        assert!(!p.path(".cairn").exists(), "no catalog may be created");
    }
}

#[test]
fn unknown_table_suggests_the_close_name() {
    check(
        &[
            ("cairn.toml", TOML),
            ("data/raw_orders.csv", CSV),
            ("assets/stg_orders.sql", "select id from raw_orders"),
            ("assets/orders.sql", "select id\nfrom stg_order"),
        ],
        &[
            "assets/orders.sql:2: unknown table `stg_order`",
            "did you mean `stg_orders`?",
        ],
    );
}

#[test]
fn cycle_names_the_chain_and_the_line() {
    check(
        &[
            ("cairn.toml", TOML),
            ("data/raw_orders.csv", CSV),
            (
                "assets/a.sql",
                "select id from raw_orders\nunion all\nselect id from c",
            ),
            ("assets/b.sql", "select id from a"),
            ("assets/c.sql", "select id from b"),
        ],
        &[
            "assets/a.sql:3: dependency cycle: a -> b -> c -> a",
            "hint:",
        ],
    );
}

#[test]
fn self_reference_of_an_unpartitioned_asset_is_refused() {
    check(
        &[
            ("cairn.toml", ""),
            ("assets/loop.sql", "select 1 as x from loop"),
        ],
        &[
            "assets/loop.sql:1: `loop` reads its own table; only a time-partitioned asset may read itself",
            "offset = -1",
        ],
    );
}

#[test]
fn duplicate_asset_names_across_folders() {
    check(
        &[
            ("cairn.toml", TOML),
            ("data/raw_orders.csv", CSV),
            ("assets/staging/orders.sql", "select id from raw_orders"),
            ("assets/marts/orders.sql", "select id from raw_orders"),
        ],
        &["duplicate asset name `orders`", "assets/marts/orders.sql"],
    );
}

#[test]
fn asset_named_like_a_source() {
    check(
        &[
            ("cairn.toml", TOML),
            ("data/raw_orders.csv", CSV),
            ("assets/raw_orders.sql", "select 1 as x"),
        ],
        &[
            "assets/raw_orders.sql: asset `raw_orders` has the same name as a source",
            "cairn.toml:2",
        ],
    );
}

#[test]
fn non_select_statement() {
    check(
        &[
            ("cairn.toml", TOML),
            ("data/raw_orders.csv", CSV),
            (
                "assets/bad.sql",
                "-- writes instead of selecting\ninsert into raw_orders values (1, 2, 3)",
            ),
        ],
        &[
            "assets/bad.sql:2: an asset must be a SELECT query, found a INSERT statement",
            "hint:",
        ],
    );
}

#[test]
fn syntax_error_points_at_the_line() {
    check(
        &[
            ("cairn.toml", TOML),
            ("data/raw_orders.csv", CSV),
            (
                "assets/broken.sql",
                "select id,\n  amount\nfrom raw_orders\nwhere and amount > 1",
            ),
        ],
        &["assets/broken.sql:4: SQL syntax error"],
    );
}

#[test]
fn two_statements_in_one_file() {
    check(
        &[
            ("cairn.toml", TOML),
            ("data/raw_orders.csv", CSV),
            (
                "assets/two.sql",
                "select id from raw_orders;\nselect 2 as x",
            ),
        ],
        &["assets/two.sql:2: an asset file must hold exactly one SQL statement"],
    );
}

#[test]
fn invalid_asset_file_name() {
    check(
        &[
            ("cairn.toml", ""),
            ("assets/Stg-Orders.sql", "select 1 as x"),
        ],
        &["invalid asset name `Stg-Orders`", "stg_orders.sql"],
    );
}

#[test]
fn unknown_config_key_in_cairn_toml() {
    check(
        &[(
            "cairn.toml",
            "[storage]\nurl = \"file://./warehouse\"\n\n[sources.raw]\npaht = \"x.csv\"\n",
        )],
        &["cairn.toml:5: invalid configuration", "paht"],
    );
}

#[test]
fn missing_source_file() {
    check(
        &[("cairn.toml", "[sources.raw]\n\npath = \"data/nope.csv\"\n")],
        &["cairn.toml:3: source `raw`: `data/nope.csv` does not exist"],
    );
}

#[test]
fn bad_asset_header_names_the_line() {
    check(
        &[
            ("cairn.toml", TOML),
            ("data/raw_orders.csv", CSV),
            (
                "assets/x.sql",
                "--- description = \"ok\"\n--- ownr = \"me\"\nselect id from raw_orders",
            ),
        ],
        &["assets/x.sql:2: invalid asset config", "ownr"],
    );
}

#[test]
fn freshness_sla_in_words_names_the_line() {
    check(
        &[
            ("cairn.toml", TOML),
            ("data/raw_orders.csv", CSV),
            (
                "assets/x.sql",
                "--- [freshness]\n--- fail_after = \"6 hours\"\nselect id from raw_orders",
            ),
        ],
        &[
            "assets/x.sql:2: fail_after",
            "found `6 hours`",
            "write e.g. \"15m\", \"2h\" or \"1d\"",
        ],
    );
}

#[test]
fn unsupported_catalog_and_storage_urls() {
    check(
        &[("cairn.toml", "[catalog]\nurl = \"mysql://x\"\n")],
        &["catalog url `mysql://x`"],
    );
    check(
        &[("cairn.toml", "[storage]\nurl = \"ftp://x\"\n")],
        &["unsupported storage scheme `ftp`"],
    );
    // Sources may be in an object store, not behind any URL.
    check(
        &[(
            "cairn.toml",
            "[sources.orders]\npath = \"https://example.com/orders.csv\"\n",
        )],
        &[
            "cairn.toml:2",
            "source `orders`",
            "https://example.com/orders.csv",
            "s3://bucket/key",
        ],
    );
}

#[test]
fn missing_project_file() {
    check(
        &[("readme.txt", "not a project")],
        &["cairn.toml", "--project"],
    );
}

#[test]
fn unknown_selection_is_a_usage_error() {
    let p = Project::with_files(&[
        ("cairn.toml", TOML),
        ("data/raw_orders.csv", CSV),
        ("assets/stg_orders.sql", "select id from raw_orders"),
    ]);
    let run = p.run(&["materialize", "stg_ordrs"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("did you mean `stg_orders`?"),
        "{}",
        run.stderr
    );
    assert!(!p.path("warehouse").exists());
    let run = p.run(&["materialize", "raw_orders"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("is a source"), "{}", run.stderr);
    let run = p.run(&["materialize", "--jobs", "0"]);
    assert_eq!(run.code, 2, "clap usage errors exit 2");
}

/// Ages beyond what a time can hold were chrono panics; each is now a
/// usage or project error naming the value.
#[test]
fn ages_too_large_for_a_time_are_refused_not_panics() {
    let p = Project::example();
    p.materialize(&["--jobs", "1"]);
    for args in [
        &["cost", "--since", "99999999999w"][..],
        &["cost", "--since", "100000000d"],
        &["audit", "--log", "--since", "99999999999w"],
        &["audit", "--log", "--since", "100000000d"],
    ] {
        assert_refused(&p, args, &["--since", "give a smaller age"]);
    }
    // A parseable but absurd maximum age in a check: refused at load.
    p.edit(
        "assets/customers.sql",
        "---     \"not_null(customer_id)\",",
        "---     \"freshness(signup_date, 20000000w)\",",
    );
    assert_refused(
        &p,
        &["materialize"],
        &["assets/customers.sql:5", "at most 100 years", "20000000w"],
    );
    // A number of seconds that overflows: also refused, not wrapped.
    p.edit("assets/customers.sql", "20000000w", "99999999999999999w");
    assert_refused(&p, &["status"], &["at most 100 years"]);
}

/// Partition offsets far outside any calendar do not overflow.
#[test]
fn huge_partition_offsets_do_not_overflow() {
    let p = Project::with_files(&[
        ("cairn.toml", "[sources.raw]\npath = \"data/raw.csv\"\n"),
        ("data/raw.csv", "d,v\n2024-01-01,1\n"),
        (
            "assets/daily.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-01-03\"\nselect v from raw",
        ),
        (
            "assets/far.sql",
            "--- [partitions]\n--- type = \"daily\"\n--- start = \"2024-01-01\"\n--- end = \"2024-01-03\"\n\
             --- [upstream.daily]\n--- mapping = \"window\"\n--- offset = -9223372036854775807\nselect v from daily",
        ),
    ]);
    let run = p.run(&["materialize"]);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_ne!(run.code, 101, "{}", run.stderr);
}
