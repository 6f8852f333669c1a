//! `cairn gc`: removes (or with `--dry-run` lists) the files no committed
//! version needs, and says how much that frees.

use std::io::Write;

use serde::Serialize;

use cairn_engine::{GcReport, Workspace};

use crate::Failure;
use crate::args::{Format, GcArgs};
use crate::commands::print_json;
use crate::output::bytes;

/// Runs `cairn gc`.
pub(crate) async fn run(ws: &Workspace, args: GcArgs) -> Result<u8, Failure> {
    let report = ws.gc(args.dry_run).await?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => render_json(&report, &mut out)?,
        Format::Text => render_text(&report, &mut out)?,
    }
    Ok(0)
}

/// The report as JSON: the files removed (or that would be) by reason,
/// the materializations whose files retention removed, the bytes freed,
/// built from the engine's [`GcReport`].
pub(crate) fn render_json(report: &GcReport, out: &mut impl Write) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Out<'a> {
        uncommitted: &'a [String],
        expired: &'a [String],
        expired_materializations: Vec<i64>,
        bytes: u64,
        dry_run: bool,
    }
    print_json(
        &Out {
            uncommitted: &report.uncommitted,
            expired: &report.expired,
            expired_materializations: report
                .expired_materializations
                .iter()
                .map(|m| m.0)
                .collect(),
            bytes: report.bytes,
            dry_run: report.dry_run,
        },
        out,
    )
}

/// One line per file removed (or, on a dry run, that would be) and why,
/// then the totals.
pub(crate) fn render_text(report: &GcReport, out: &mut impl Write) -> std::io::Result<()> {
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for f in &report.uncommitted {
        writeln!(out, "{verb} {f} (never committed)")?;
    }
    for f in &report.expired {
        writeln!(out, "{verb} {f} (replaced, past retention)")?;
    }
    writeln!(
        out,
        "{} {} file(s), {}",
        verb,
        report.uncommitted.len() + report.expired.len(),
        bytes(report.bytes)
    )
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use cairn_catalog::MaterializationId;
    use cairn_engine::GcReport;

    use super::{render_json, render_text};
    use crate::commands::testing::{json, rendered};

    /// A dry run finding a file never committed and two past retention.
    fn dry_run() -> GcReport {
        GcReport {
            uncommitted: vec![
                "orders/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet".to_owned(),
            ],
            expired: vec![
                "daily/date=2024-01-01/0190a1b2-0000-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet"
                    .to_owned(),
                "daily/date=2024-01-02/0190a1b2-0000-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet"
                    .to_owned(),
            ],
            expired_materializations: vec![MaterializationId(2), MaterializationId(3)],
            bytes: 3_172,
            dry_run: true,
        }
    }

    #[test]
    fn text_of_a_dry_run() {
        expect![[r#"
            would remove orders/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet (never committed)
            would remove daily/date=2024-01-01/0190a1b2-0000-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet (replaced, past retention)
            would remove daily/date=2024-01-02/0190a1b2-0000-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet (replaced, past retention)
            would remove 3 file(s), 3.1 KiB
        "#]].assert_eq(&rendered(|out| render_text(&dry_run(), out)));
    }

    /// The JSON: the files by reason, the materializations retention
    /// expired (as ids), the bytes freed, whether it was a dry run.
    #[test]
    fn json_of_a_dry_run() {
        expect![[r#"
            {
              "uncommitted": [
                "orders/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet"
              ],
              "expired": [
                "daily/date=2024-01-01/0190a1b2-0000-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet",
                "daily/date=2024-01-02/0190a1b2-0000-7e5f-8a9b-0c1d2e3f4a5b-00000.parquet"
              ],
              "expired_materializations": [
                2,
                3
              ],
              "bytes": 3172,
              "dry_run": true
            }
        "#]]
        .assert_eq(&json(|out| render_json(&dry_run(), out)));
        expect![[r#"
            {
              "uncommitted": [],
              "expired": [],
              "expired_materializations": [],
              "bytes": 0,
              "dry_run": false
            }
        "#]]
        .assert_eq(&json(|out| render_json(&GcReport::default(), out)));
    }
}
