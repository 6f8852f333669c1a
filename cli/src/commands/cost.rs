//! `cairn cost`: what assets cost (measured), of their current versions or
//! over a window, optionally rolled up along lineage, in the order asked.

use std::io::Write;

use cairn_engine::{AssetCost, Workspace};

use crate::Failure;
use crate::args::{CostArgs, CostSort, Format};
use crate::commands::{print_json, since};
use crate::output::bytes;

/// Runs `cairn cost`.
pub(crate) fn run(ws: &Workspace, args: CostArgs) -> Result<u8, Failure> {
    let since = since(args.since.as_deref())?;
    let mut costs = ws.cost(&args.selection, since, args.rollup)?;
    sort(&mut costs, args.sort);
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => render_json(&costs, &mut out)?,
        Format::Text => render_text(&costs, args.rollup, &mut out)?,
    }
    Ok(0)
}

/// Puts `costs` (in dependency order) in the order asked for: the largest
/// first, of the roll-up when there is one.
fn sort(costs: &mut [AssetCost], by: CostSort) {
    let key = |c: &AssetCost| {
        let f = c.rollup.as_ref().unwrap_or(&c.own);
        match by {
            CostSort::Name => 0.0,
            CostSort::Cost => f.cost_usd,
            CostSort::Cpu => f.cpu_seconds,
            CostSort::Read => f.bytes_read as f64,
        }
    };
    if by != CostSort::Name {
        costs.sort_by(|a, b| key(b).total_cmp(&key(a)));
    }
}

/// The costs as JSON: the engine's [`AssetCost`]s as they serialize.
pub(crate) fn render_json(costs: &[AssetCost], out: &mut impl Write) -> Result<(), Failure> {
    print_json(&costs, out)
}

/// The costs as a table, one row per asset; with `rollup`, a last column
/// with the cost including everything upstream.
pub(crate) fn render_text(
    costs: &[AssetCost],
    rollup: bool,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let width = costs
        .iter()
        .map(|c| c.asset.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:<width$}  {:>5}  {:>9}  {:>9}  {:>10}  {:>10}  {:>8}  {:>12}{}",
        "ASSET",
        "MATS",
        "WALL",
        "CPU",
        "READ",
        "WRITTEN",
        "REQUESTS",
        "COST USD",
        if rollup { "  ROLLUP USD" } else { "" }
    )?;
    for c in costs {
        let f = &c.own;
        let rollup = c
            .rollup
            .as_ref()
            .map(|r| format!("  {:>10.6}", r.cost_usd))
            .unwrap_or_default();
        writeln!(
            out,
            "{:<width$}  {:>5}  {:>8.2}s  {:>8.3}s  {:>10}  {:>10}  {:>8}  {:>12.6}{rollup}",
            c.asset,
            f.materializations,
            f.wall_seconds,
            f.cpu_seconds,
            bytes(f.bytes_read),
            bytes(f.bytes_written),
            f.requests,
            f.cost_usd
        )?;
    }
    Ok(())
}
