//! Parsing an asset's SQL: exactly one SELECT, its normalized text (for the
//! code version) and the tables it reads (for the inferred graph).

use std::path::Path;

use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::resolve::resolve_table_references;
use datafusion::sql::sqlparser::ast::{Spanned, Statement as SqlStatement};

use crate::diagnostic::Diagnostic;

/// The parts of an asset's SQL that Cairn needs (kept between loads in
/// the parse cache, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParsedQuery {
    /// The query re-rendered from its syntax tree: comments, whitespace and
    /// keyword case no longer matter, so they do not change the code version.
    pub normalized: String,
    /// Tables read (bare, normalized names), each with the 1-based line of
    /// its first mention. CTE names are not included.
    pub tables: Vec<(String, usize)>,
    /// Partition placeholders used (`{{start}}` ...), with their lines.
    pub placeholders: Vec<(String, usize)>,
}

/// A `{{name}}` that cannot be bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnboundPlaceholder {
    /// The name inside the braces.
    pub name: String,
    /// 1-based line.
    pub line: usize,
}

/// Replaces every `{{name}}` in `sql` by `value(name)`. Placeholders are
/// how a partitioned asset's SQL sees its partition: `{{start}}`/`{{end}}`
/// (UTC timestamps), `{{start_date}}`/`{{end_date}}` (local dates, end
/// exclusive), `{{partition_key}}` and `{{<static dimension>}}` (strings).
pub fn bind_placeholders(
    sql: &str,
    value: impl Fn(&str) -> Option<String>,
) -> Result<String, UnboundPlaceholder> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let line = sql[..sql.len() - rest.len() + open].matches('\n').count() + 1;
        let Some(close) = after.find("}}") else {
            return Err(UnboundPlaceholder {
                name: after.chars().take(20).collect(),
                line,
            });
        };
        let name = after[..close].trim();
        match value(name) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(UnboundPlaceholder {
                    name: name.to_owned(),
                    line,
                });
            }
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `sql` with every placeholder replaced by a stand-in value of the right
/// type, for planning a query before any partition is known.
pub fn with_stand_ins(sql: &str) -> Result<String, UnboundPlaceholder> {
    bind_placeholders(sql, placeholder_stand_in)
}

/// Stand-in values of the right SQL type, used to parse a query before any
/// partition is known.
fn placeholder_stand_in(name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return None;
    }
    Some(match name {
        "start" | "end" => "TIMESTAMP '1970-01-01 00:00:00'".to_owned(),
        "start_date" | "end_date" => "DATE '1970-01-01'".to_owned(),
        _ => "'__cairn_partition__'".to_owned(),
    })
}

/// Parses the SQL of an asset file. `file` is used in diagnostics only.
pub fn parse_asset_sql(text: &str, file: &Path) -> Result<ParsedQuery, Diagnostic> {
    let mut placeholders = Vec::new();
    {
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let line = text[..text.len() - rest.len() + open].matches('\n').count() + 1;
            let after = &rest[open + 2..];
            let name = after
                .find("}}")
                .map(|c| after[..c].trim().to_owned())
                .unwrap_or_default();
            placeholders.push((name, line));
            rest = after;
        }
    }
    let bound = bind_placeholders(text, placeholder_stand_in).map_err(|p| {
        Diagnostic::new(file, Some(p.line), format!("invalid placeholder `{{{{{}}}}}`", p.name))
            .with_hint("placeholders look like {{start}}, {{end}}, {{start_date}}, {{end_date}}, {{partition_key}} or {{<dimension>}}")
    })?;
    let text = bound.as_str();
    let mut statements = DFParser::parse_sql(text).map_err(|e| {
        let message = e.strip_backtrace();
        let message = message
            .strip_prefix("SQL error: ParserError(\"")
            .and_then(|m| m.strip_suffix("\")"))
            .unwrap_or(&message)
            .to_owned();
        Diagnostic::new(
            file,
            error_line(&message),
            format!("SQL syntax error: {message}"),
        )
        .with_hint(
            "an asset file holds one SELECT (or WITH ... SELECT) in DataFusion's SQL dialect",
        )
    })?;
    let Some(statement) = statements.pop_front() else {
        return Err(Diagnostic::new(file, None, "no SQL statement found")
            .with_hint("write one SELECT (or WITH ... SELECT) whose result is the asset"));
    };
    if let Some(extra) = statements.front() {
        let line = statement_line(extra);
        return Err(Diagnostic::new(
            file,
            line,
            "an asset file must hold exactly one SQL statement, found more",
        )
        .with_hint("split the statements into one file per asset, or remove the extra `;`-separated statement"));
    }
    match &statement {
        Statement::Statement(inner) if matches!(**inner, SqlStatement::Query(_)) => {}
        other => {
            let keyword = other
                .to_string()
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_uppercase();
            return Err(Diagnostic::new(
                file,
                statement_line(other),
                format!("an asset must be a SELECT query, found a {keyword} statement"),
            )
            .with_hint("Cairn writes the asset's table itself: keep only the SELECT that computes its rows"));
        }
    }

    let (relations, _ctes) = resolve_table_references(&statement, true).map_err(|e| {
        Diagnostic::new(
            file,
            None,
            format!("cannot resolve table references: {}", e.strip_backtrace()),
        )
    })?;
    let functions = match &statement {
        Statement::Statement(inner) => table_functions_only(inner),
        _ => std::collections::BTreeSet::new(),
    };
    let mut tables = Vec::with_capacity(relations.len());
    for relation in relations {
        let name = relation.table().to_owned();
        if relation.schema().is_none() && functions.contains(&name) {
            // `from generate_series(1, 10)`: DataFusion's table function,
            // not an asset or source to read.
            continue;
        }
        let line = first_mention_line(text, &name).unwrap_or(1);
        if relation.schema().is_some() {
            return Err(Diagnostic::new(
                file,
                Some(line),
                format!("qualified table name `{relation}` is not supported"),
            )
            .with_hint(format!(
                "refer to assets and sources by their bare name, e.g. `{name}`"
            )));
        }
        tables.push((name, line));
    }
    tables.sort();
    tables.dedup_by(|a, b| a.0 == b.0);
    Ok(ParsedQuery {
        normalized: statement.to_string(),
        tables,
        placeholders,
    })
}

/// The names called as table functions (`from generate_series(1, 10)`) and
/// never read as tables in the same query, lowercased as DataFusion
/// normalizes unquoted names.
fn table_functions_only(statement: &SqlStatement) -> std::collections::BTreeSet<String> {
    use datafusion::sql::sqlparser::ast::{TableFactor, Visit, Visitor};
    use std::collections::BTreeSet;
    use std::ops::ControlFlow;

    #[derive(Default)]
    struct Calls {
        functions: BTreeSet<String>,
        tables: BTreeSet<String>,
    }
    impl Visitor for Calls {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, args, .. } = factor
                && let [part] = name.0.as_slice()
                && let Some(ident) = part.as_ident()
            {
                let normalized = match ident.quote_style {
                    Some(_) => ident.value.clone(),
                    None => ident.value.to_lowercase(),
                };
                match args {
                    Some(_) => self.functions.insert(normalized),
                    None => self.tables.insert(normalized),
                };
            }
            ControlFlow::Continue(())
        }
    }
    let mut calls = Calls::default();
    let _ = statement.visit(&mut calls);
    calls.functions.difference(&calls.tables).cloned().collect()
}

/// The line sqlparser reports in an error message ("... at Line: 3, Column: 7").
fn error_line(message: &str) -> Option<usize> {
    let rest = &message[message.rfind("Line: ")? + "Line: ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|l| *l > 0)
}

fn statement_line(statement: &Statement) -> Option<usize> {
    let Statement::Statement(inner) = statement else {
        return None;
    };
    let line = inner.span().start.line;
    usize::try_from(line).ok().filter(|l| *l > 0)
}

/// The first line where `name` appears as a whole word outside a `--`
/// comment, compared case-insensitively.
fn first_mention_line(text: &str, name: &str) -> Option<usize> {
    for (index, line) in text.lines().enumerate() {
        let code = line
            .split("--")
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let bytes = code.as_bytes();
        let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let mut start = 0;
        while let Some(pos) = code[start..].find(name) {
            let at = start + pos;
            let end = at + name.len();
            let before_ok = at == 0 || !is_word(bytes[at - 1]);
            let after_ok = end >= bytes.len() || !is_word(bytes[end]);
            if before_ok && after_ok {
                return Some(index + 1);
            }
            start = at + 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Result<ParsedQuery, Diagnostic> {
        parse_asset_sql(sql, Path::new("assets/x.sql"))
    }

    #[test]
    fn table_functions_are_not_upstreams_unless_also_read_as_tables() {
        let names = |sql: &str| -> Vec<String> {
            parse(sql)
                .unwrap_or_else(|d| panic!("{d}"))
                .tables
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        };
        assert_eq!(
            names("select value from generate_series(1, 10) join dims on value = k"),
            vec!["dims"]
        );
        assert_eq!(
            names("select * from RANGE(3) a, range b"),
            vec!["range"],
            "`range` is also read as a table"
        );
    }

    #[test]
    fn infers_tables_but_not_ctes() {
        let q = parse(
            "with recent as (select * from Raw_Orders where x > 1)\n\
             select * from recent r\n join stg_customers c on r.id = c.id",
        )
        .unwrap_or_else(|d| panic!("{d}"));
        let names: Vec<_> = q.tables.iter().map(|t| (t.0.as_str(), t.1)).collect();
        assert_eq!(names, vec![("raw_orders", 1), ("stg_customers", 3)]);
    }

    #[test]
    fn normalization_ignores_comments_and_whitespace() {
        let a = parse("select a,b from t -- comment\n").map(|q| q.normalized);
        let b = parse("SELECT a,\n   b\nFROM t").map(|q| q.normalized);
        assert_eq!(a, b);
        let c = parse("select a, b from t where 1 = 1").map(|q| q.normalized);
        assert_ne!(a, c);
    }

    #[test]
    fn syntax_error_names_line() {
        let err = parse("select a\nfrom t\nwhere and x > 1").err();
        assert_eq!(err.as_ref().and_then(|d| d.line), Some(3), "{err:?}");
    }

    #[test]
    fn rejects_non_select_and_multiple_statements() {
        let err = parse("insert into t values (1)").err().map(|d| d.message);
        assert!(err.is_some_and(|m| m.contains("INSERT")));
        let err = parse("select 1;\nselect 2").err();
        assert_eq!(err.and_then(|d| d.line), Some(2));
        assert!(parse("-- nothing\n").is_err());
    }

    #[test]
    fn mention_line_skips_comments_and_substrings() {
        let text = "-- orders here\nselect orders_x\nfrom orders";
        assert_eq!(first_mention_line(text, "orders"), Some(3));
    }
}
