//! `cairn lineage`: the asset graph around one asset (what it reads, what
//! reads it) as trees or JSON edges; with `--column`, the lineage of one
//! output column down to the source columns.

use std::collections::BTreeSet;
use std::io::Write;

use serde::Serialize;

use cairn_engine::{AssetGraph, ColumnNode, NodeKind, Workspace};

use crate::Failure;
use crate::args::{Format, LineageArgs};
use crate::commands::print_json;

/// Runs `cairn lineage ASSET`.
pub(crate) fn run(ws: &Workspace, args: LineageArgs) -> Result<u8, Failure> {
    let around = around(ws, &args)?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => render_json(&around, &mut out)?,
        Format::Text => render_text(&around, &mut out)?,
    }
    Ok(0)
}

/// Runs `cairn lineage ASSET --column COLUMN`.
pub(crate) async fn run_columns(ws: &Workspace, args: LineageArgs) -> Result<u8, Failure> {
    let column = args.column.unwrap_or_default();
    let tree = ws.column_lineage(&args.asset, &column, args.depth).await?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => render_columns_json(&tree, &mut out)?,
        Format::Text => render_columns_text(&tree, &mut out)?,
    }
    Ok(0)
}

/// What `cairn lineage ASSET` shows: the graph around one node.
pub(crate) struct Around<'a> {
    /// The whole graph.
    pub graph: &'a AssetGraph,
    /// The asset or source asked about (in the graph).
    pub asset: &'a str,
    /// Whether to show what it reads from.
    pub upstream: bool,
    /// Whether to show what reads from it.
    pub downstream: bool,
    /// When the asset reads its own earlier partitions: how many periods
    /// back, nearest and farthest.
    pub own_window: Option<(i64, i64)>,
}

/// The graph around `args.asset`, which must be in it.
fn around<'a>(ws: &'a Workspace, args: &'a LineageArgs) -> Result<Around<'a>, Failure> {
    let graph = &ws.graph;
    if !graph.contains(&args.asset) {
        let hint = cairn_assets::closest_name(&args.asset, graph.names())
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        return Err(Failure::Usage(format!(
            "unknown asset `{}`{hint}",
            args.asset
        )));
    }
    let (upstream, downstream) = match (args.upstream, args.downstream) {
        (true, false) => (true, false),
        (false, true) => (false, true),
        _ => (true, true),
    };
    let own_window = match ws.project.assets.get(&args.asset) {
        Some(asset) if asset.reads_itself() => match asset.mapping(&asset.name) {
            cairn_assets::partitions::PartitionMapping::Window { offset, lag } => {
                Some((-offset, -offset + i64::from(lag)))
            }
            _ => None,
        },
        _ => None,
    };
    Ok(Around {
        graph,
        asset: &args.asset,
        upstream,
        downstream,
        own_window,
    })
}

/// The graph around the asset as JSON: the nodes upstream and downstream
/// of it and the edges between all of them.
pub(crate) fn render_json(around: &Around<'_>, out: &mut impl Write) -> Result<(), Failure> {
    #[derive(Serialize)]
    struct Edge {
        from: String,
        to: String,
    }
    #[derive(Serialize)]
    struct Out {
        asset: String,
        upstream: Vec<String>,
        downstream: Vec<String>,
        edges: Vec<Edge>,
    }
    let graph = around.graph;
    let upstream: BTreeSet<String> = if around.upstream {
        graph.ancestors(around.asset)
    } else {
        BTreeSet::new()
    };
    let downstream: BTreeSet<String> = if around.downstream {
        graph.descendants(around.asset)
    } else {
        BTreeSet::new()
    };
    let mut nodes: BTreeSet<String> = upstream.iter().chain(downstream.iter()).cloned().collect();
    nodes.insert(around.asset.to_owned());
    let mut edges = Vec::new();
    for n in &nodes {
        for d in graph.downstream(n) {
            if nodes.contains(d) {
                edges.push(Edge {
                    from: n.clone(),
                    to: d.to_owned(),
                });
            }
        }
    }
    print_json(
        &Out {
            asset: around.asset.to_owned(),
            upstream: upstream.into_iter().collect(),
            downstream: downstream.into_iter().collect(),
            edges,
        },
        out,
    )
}

/// The graph around the asset as text: the asset, how it reads itself,
/// then the trees of what it reads from and of what reads it.
pub(crate) fn render_text(around: &Around<'_>, out: &mut impl Write) -> std::io::Result<()> {
    let graph = around.graph;
    let label = |n: &str| match graph.kind(n) {
        Some(NodeKind::Source) => format!("{n} (source)"),
        _ => n.to_owned(),
    };
    writeln!(out, "{}", label(around.asset))?;
    if let Some((last, first)) = around.own_window {
        let periods = if first == last {
            format!("{last}")
        } else {
            format!("{last} to {first}")
        };
        writeln!(
            out,
            "reads its own earlier partitions ({periods} period(s) back)"
        )?;
    }
    if around.upstream {
        writeln!(out, "upstream (reads from):")?;
        tree(out, around.asset, &|n| graph.upstream(n), &label, "  ")?;
    }
    if around.downstream {
        writeln!(out, "downstream (read by):")?;
        tree(out, around.asset, &|n| graph.downstream(n), &label, "  ")?;
    }
    Ok(())
}

fn tree<'g>(
    out: &mut impl Write,
    node: &str,
    next: &dyn Fn(&str) -> Vec<&'g str>,
    label: &dyn Fn(&str) -> String,
    indent: &str,
) -> std::io::Result<()> {
    let children = next(node);
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        writeln!(
            out,
            "{indent}{}{}",
            if last { "└── " } else { "├── " },
            label(child)
        )?;
        let deeper = format!("{indent}{}", if last { "    " } else { "│   " });
        tree(out, child, next, label, &deeper)?;
    }
    Ok(())
}

/// The column lineage as JSON: the engine's [`ColumnNode`] tree as it
/// serializes.
pub(crate) fn render_columns_json(tree: &ColumnNode, out: &mut impl Write) -> Result<(), Failure> {
    print_json(tree, out)
}

/// The column lineage as an indented tree: `table.column`, whether it is
/// a source, a partition dimension or the asset's own earlier partitions,
/// and how the column below uses it.
pub(crate) fn render_columns_text(tree: &ColumnNode, out: &mut impl Write) -> std::io::Result<()> {
    column_node(tree, "", out)
}

fn column_node(n: &ColumnNode, indent: &str, out: &mut impl Write) -> std::io::Result<()> {
    let kind = n
        .kind
        .map(|k| {
            format!(
                "  ({})",
                serde_json::to_value(k)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_default();
    let source = if n.is_source {
        " [source]"
    } else if n.is_dimension {
        " [partition dimension]"
    } else if n.earlier_partitions {
        " [earlier partitions]"
    } else {
        ""
    };
    writeln!(out, "{indent}{}.{}{source}{kind}", n.table, n.column)?;
    for u in &n.upstream {
        column_node(u, &format!("{indent}  "), out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::{around, render_columns_text, render_text};
    use crate::args::{Format, LineageArgs};
    use crate::commands::testing::{open, rendered, runtime, shop};

    /// `cairn lineage ASSET [--upstream | --downstream]` on the shop.
    fn lineage(asset: &str, upstream: bool, downstream: bool) -> String {
        let dir = shop();
        let ws = open(dir.path());
        let args = LineageArgs {
            asset: asset.to_owned(),
            upstream,
            downstream,
            column: None,
            depth: None,
            format: Format::Text,
        };
        let around = around(&ws, &args).unwrap_or_else(|_| panic!("no lineage of {asset}"));
        rendered(|out| render_text(&around, out))
    }

    /// Both directions, around an asset in the middle.
    #[test]
    fn both_ways() {
        expect![[r#"
            regions
            upstream (reads from):
              └── sales (source)
            downstream (read by):
              ├── big_regions
              ├── top
              └── total
        "#]]
        .assert_eq(&lineage("regions", false, false));
    }

    /// An asset reading its own earlier partitions says so.
    #[test]
    fn reading_its_own_earlier_partitions() {
        expect![[r#"
            running
            reads its own earlier partitions (1 period(s) back)
            upstream (reads from):
              └── daily
                  └── sales (source)
        "#]]
        .assert_eq(&lineage("running", true, false));
    }

    /// Everything reading a source, as a tree.
    #[test]
    fn downstream_of_a_source() {
        expect![[r#"
            sales (source)
            downstream (read by):
              ├── daily
              │   └── running
              └── regions
                  ├── big_regions
                  ├── top
                  └── total
        "#]]
        .assert_eq(&lineage("sales", false, true));
    }

    /// A column walked to the source columns, through the asset's own
    /// earlier partitions.
    #[test]
    fn a_column() {
        let dir = shop();
        let ws = open(dir.path());
        let tree = runtime()
            .block_on(ws.column_lineage("running", "total", None))
            .unwrap_or_else(|e| panic!("{e}"));
        expect![[r#"
            running.total
              daily.amount  (expression)
                sales.amount [source]  (aggregate)
              running.total [earlier partitions]  (aggregate)
        "#]]
        .assert_eq(&rendered(|out| render_columns_text(&tree, out)));
    }
}
