//! dbt-like selection: `name`, `+name` (with everything upstream),
//! `name+` (with everything downstream), `+name+`, `*` (every asset).

use std::collections::BTreeSet;

use cairn_assets::closest_name;

use crate::model::graph::{AssetGraph, NodeKind};

/// One selector as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The asset name, or `*`.
    pub name: String,
    /// Include everything upstream.
    pub upstream: bool,
    /// Include everything downstream.
    pub downstream: bool,
}

/// A selector naming something that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SelectionError {
    /// What is wrong, with a hint.
    pub message: String,
}

impl Selector {
    /// Parses `+name+` style text.
    pub fn parse(text: &str) -> Selector {
        let upstream = text.starts_with('+');
        let downstream = text.len() > 1 && text.ends_with('+');
        let name = text
            .trim_start_matches('+')
            .trim_end_matches('+')
            .to_owned();
        Selector {
            name,
            upstream,
            downstream,
        }
    }
}

/// Resolves selectors to a set of asset names (sources are never selected:
/// they are read, not built). No selectors means every asset.
pub fn resolve(
    graph: &AssetGraph,
    selectors: &[String],
) -> Result<BTreeSet<String>, SelectionError> {
    let all_assets = || {
        graph
            .assets_in_order()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>()
    };
    if selectors.is_empty() {
        return Ok(all_assets());
    }
    let mut out = BTreeSet::new();
    for text in selectors {
        let sel = Selector::parse(text);
        if sel.name == "*" {
            out.extend(all_assets());
            continue;
        }
        match graph.kind(&sel.name) {
            None => {
                let hint = closest_name(&sel.name, graph.names())
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_else(|| {
                        " (run `cairn lineage` or `cairn status` to list assets)".to_owned()
                    });
                return Err(SelectionError {
                    message: format!("unknown asset `{}` in selection `{text}`{hint}", sel.name),
                });
            }
            Some(NodeKind::Source) if !sel.downstream => {
                return Err(SelectionError {
                    message: format!(
                        "`{}` is a source, not an asset: sources are read, not materialized (use `{}+` to select what reads it)",
                        sel.name, sel.name
                    ),
                });
            }
            Some(NodeKind::Source) => {}
            Some(NodeKind::Asset) => {
                out.insert(sel.name.clone());
            }
        }
        if sel.upstream {
            out.extend(graph.ancestors(&sel.name));
        }
        if sel.downstream {
            out.extend(graph.descendants(&sel.name));
        }
    }
    out.retain(|n| graph.kind(n) == Some(NodeKind::Asset));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plus_forms() {
        assert_eq!(
            Selector::parse("+a+"),
            Selector {
                name: "a".into(),
                upstream: true,
                downstream: true
            }
        );
        assert_eq!(
            Selector::parse("a"),
            Selector {
                name: "a".into(),
                upstream: false,
                downstream: false
            }
        );
        assert_eq!(
            Selector::parse("a+"),
            Selector {
                name: "a".into(),
                upstream: false,
                downstream: true
            }
        );
    }
}
