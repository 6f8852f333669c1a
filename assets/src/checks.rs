//! Data quality checks declared on an asset:
//! `checks = ["not_null(id)", { check = "row_count(1, 1000)", severity = "warn" }]`.
//!
//! Kinds: `not_null(col)`, `unique(col[, col...])`,
//! `accepted_values(col, [v, ...])`, `relationships(col, asset.col)`,
//! `row_count(min[, max])`, `freshness(col, max_age)` (e.g. `2d`, `12h`),
//! `expression(sql_predicate)` (rows where it is not true fail) and
//! `sql(query)` (a query returning the failing rows). Parsing here checks
//! the form; the engine checks columns against the asset's schema.

use std::fmt;
use std::time::Duration;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// What a failing check does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Commit anyway and report.
    Warn,
    /// Keep the previous version current and block downstream.
    Error,
}

impl Severity {
    /// `warn` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// One kind of check with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// No NULLs in the column.
    NotNull {
        /// Column.
        column: String,
    },
    /// No two rows share these columns' values.
    Unique {
        /// Columns.
        columns: Vec<String>,
    },
    /// Every non-NULL value is one of these (SQL literals as written).
    AcceptedValues {
        /// Column.
        column: String,
        /// SQL literals.
        values: Vec<String>,
    },
    /// Every non-NULL value exists in another asset's column.
    Relationships {
        /// Column.
        column: String,
        /// The referenced asset.
        to_asset: String,
        /// The referenced column.
        to_column: String,
    },
    /// The number of rows is within bounds.
    RowCount {
        /// Inclusive minimum.
        min: Option<u64>,
        /// Inclusive maximum.
        max: Option<u64>,
    },
    /// The newest value of a time column is recent enough.
    Freshness {
        /// Column.
        column: String,
        /// Largest allowed age.
        max_age: Duration,
    },
    /// Rows for which the predicate is not true fail.
    Expression {
        /// SQL predicate.
        predicate: String,
    },
    /// A query returning the failing rows.
    Sql {
        /// The query.
        query: String,
    },
}

/// A declared check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckDef {
    /// Its text as declared, e.g. `not_null(customer_id)`; also its name.
    pub name: String,
    /// What it checks.
    pub kind: CheckKind,
    /// What failing does.
    pub severity: Severity,
    /// The config line it was declared on.
    pub line: usize,
}

impl fmt::Display for CheckDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl CheckDef {
    /// The columns of the asset's own output the check reads (for
    /// validation against the schema).
    pub fn columns(&self) -> Vec<&str> {
        match &self.kind {
            CheckKind::NotNull { column }
            | CheckKind::AcceptedValues { column, .. }
            | CheckKind::Relationships { column, .. }
            | CheckKind::Freshness { column, .. } => vec![column.as_str()],
            CheckKind::Unique { columns } => columns.iter().map(String::as_str).collect(),
            CheckKind::RowCount { .. } | CheckKind::Expression { .. } | CheckKind::Sql { .. } => {
                Vec::new()
            }
        }
    }
}

/// Parses one check's text; the error says what form was expected.
pub fn parse_check(text: &str, severity: Severity, line: usize) -> Result<CheckDef, String> {
    let text = text.trim();
    let (name, args) = split_call(text)?;
    let args = split_args(args)?;
    let want = |n: &str, usage: &str| -> Result<(), String> {
        let ok = match n {
            "1" => args.len() == 1,
            "2" => args.len() == 2,
            "1+" => !args.is_empty(),
            "1-2" => (1..=2).contains(&args.len()),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("`{name}` takes {usage}"))
        }
    };
    let kind = match name {
        "not_null" => {
            want("1", "one column: not_null(col)")?;
            CheckKind::NotNull {
                column: identifier(&args[0])?,
            }
        }
        "unique" => {
            want("1+", "one or more columns: unique(col[, col])")?;
            CheckKind::Unique {
                columns: args
                    .iter()
                    .map(|a| identifier(a))
                    .collect::<Result<_, _>>()?,
            }
        }
        "accepted_values" => {
            want("2", "a column and a list: accepted_values(col, ['a', 'b'])")?;
            let list = args[1].trim();
            let inner = list
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .ok_or_else(|| format!("the values of accepted_values must be a list like ['a', 'b'], found `{list}`"))?;
            let values = split_args(inner)?;
            if values.is_empty() {
                return Err("accepted_values needs at least one value".to_owned());
            }
            for v in &values {
                parse_sql_expr(v).map_err(|e| format!("value `{v}` is not a SQL literal: {e}"))?;
            }
            CheckKind::AcceptedValues {
                column: identifier(&args[0])?,
                values,
            }
        }
        "relationships" => {
            want(
                "2",
                "a column and asset.column: relationships(customer_id, customers.id)",
            )?;
            let target = args[1].trim();
            let (asset, column) = target
                .split_once('.')
                .ok_or_else(|| format!("the target must be asset.column, found `{target}`"))?;
            CheckKind::Relationships {
                column: identifier(&args[0])?,
                to_asset: identifier(asset)?,
                to_column: identifier(column)?,
            }
        }
        "row_count" => {
            want(
                "1-2",
                "a minimum and optionally a maximum: row_count(1, 1000)",
            )?;
            let bound = |s: &str| -> Result<Option<u64>, String> {
                let s = s.trim();
                if s == "_" || s.eq_ignore_ascii_case("null") {
                    return Ok(None);
                }
                s.parse().map(Some).map_err(|_| {
                    format!("row_count bounds are whole numbers (or _ for none), found `{s}`")
                })
            };
            let min = bound(&args[0])?;
            let max = args.get(1).map(|a| bound(a)).transpose()?.flatten();
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                return Err(format!("row_count minimum {a} is above the maximum {b}"));
            }
            CheckKind::RowCount { min, max }
        }
        "freshness" => {
            want("2", "a column and a maximum age: freshness(updated_at, 2d)")?;
            CheckKind::Freshness {
                column: identifier(&args[0])?,
                max_age: parse_age(&args[1])?,
            }
        }
        "expression" => {
            want("1", "one SQL predicate: expression(amount >= 0)")?;
            let predicate = args[0].trim().to_owned();
            parse_sql_expr(&predicate)
                .map_err(|e| format!("malformed predicate `{predicate}`: {e}"))?;
            CheckKind::Expression { predicate }
        }
        "sql" => {
            let query = text[name.len()..].trim();
            let query = query
                .strip_prefix('(')
                .and_then(|q| q.strip_suffix(')'))
                .unwrap_or(query)
                .trim();
            let query = unquote(query).unwrap_or_else(|| query.to_owned());
            Parser::new(&GenericDialect {})
                .try_with_sql(&query)
                .and_then(|mut p| p.parse_query())
                .map_err(|e| format!("malformed query `{query}`: {e}"))?;
            CheckKind::Sql { query }
        }
        other => {
            return Err(format!(
                "unknown check `{other}`; known: not_null, unique, accepted_values, relationships, row_count, freshness, expression, sql"
            ));
        }
    };
    Ok(CheckDef {
        name: text.to_owned(),
        kind,
        severity,
        line,
    })
}

fn split_call(text: &str) -> Result<(&str, &str), String> {
    let open = text
        .find('(')
        .ok_or_else(|| format!("a check looks like name(arguments), found `{text}`"))?;
    let inner = text[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| format!("missing `)` at the end of `{text}`"))?;
    Ok((text[..open].trim(), inner))
}

/// Splits on top-level commas (outside quotes, parentheses and brackets).
fn split_args(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut current = String::new();
    for c in s.chars() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                current.push(c);
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    current.push(c);
                }
                '(' | '[' => {
                    depth += 1;
                    current.push(c);
                }
                ')' | ']' => {
                    depth -= 1;
                    current.push(c);
                }
                ',' if depth == 0 => out.push(std::mem::take(&mut current)),
                _ => current.push(c),
            },
        }
    }
    if quote.is_some() || depth != 0 {
        return Err(format!("unbalanced quotes or brackets in `{s}`"));
    }
    if !current.trim().is_empty() || !out.is_empty() {
        out.push(current);
    }
    Ok(out.into_iter().map(|a| a.trim().to_owned()).collect())
}

fn identifier(s: &str) -> Result<String, String> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        return Ok(inner.to_owned());
    }
    let valid = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!("`{s}` is not a column name"))
    }
}

fn unquote(s: &str) -> Option<String> {
    s.strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .map(|x| x.replace("''", "'"))
}

fn parse_sql_expr(s: &str) -> Result<(), String> {
    Parser::new(&GenericDialect {})
        .try_with_sql(s)
        .and_then(|mut p| {
            let e = p.parse_expr()?;
            p.expect_token(&datafusion::sql::sqlparser::tokenizer::Token::EOF)?;
            Ok(e)
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `30m`, `12h`, `2d`, `1w` (also quoted).
fn parse_age(s: &str) -> Result<Duration, String> {
    let raw = s.trim();
    let t = unquote(raw).unwrap_or_else(|| raw.to_owned());
    crate::duration::parse_span(&t, raw, "a maximum age", "30m, 12h, 2d or 1w")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> CheckKind {
        parse_check(text, Severity::Error, 1)
            .map(|c| c.kind)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> String {
        parse_check(text, Severity::Error, 1)
            .err()
            .unwrap_or_else(|| panic!("{text} should fail"))
    }

    #[test]
    fn parses_every_kind() {
        assert_eq!(
            ok("not_null(ID)"),
            CheckKind::NotNull {
                column: "id".into()
            }
        );
        assert_eq!(
            ok("unique(a, b)"),
            CheckKind::Unique {
                columns: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(
            ok("accepted_values(status, ['a', 'b, c'])"),
            CheckKind::AcceptedValues {
                column: "status".into(),
                values: vec!["'a'".into(), "'b, c'".into()]
            }
        );
        assert_eq!(
            ok("relationships(customer_id, customers.id)"),
            CheckKind::Relationships {
                column: "customer_id".into(),
                to_asset: "customers".into(),
                to_column: "id".into()
            }
        );
        assert_eq!(
            ok("row_count(1, 10)"),
            CheckKind::RowCount {
                min: Some(1),
                max: Some(10)
            }
        );
        assert_eq!(
            ok("row_count(_, 10)"),
            CheckKind::RowCount {
                min: None,
                max: Some(10)
            }
        );
        assert_eq!(
            ok("freshness(ts, 2d)"),
            CheckKind::Freshness {
                column: "ts".into(),
                max_age: Duration::from_secs(172_800)
            }
        );
        assert_eq!(
            ok("expression(amount >= 0 and x in (1, 2))"),
            CheckKind::Expression {
                predicate: "amount >= 0 and x in (1, 2)".into()
            }
        );
        assert_eq!(
            ok("sql(select * from t where a < 0)"),
            CheckKind::Sql {
                query: "select * from t where a < 0".into()
            }
        );
    }

    #[test]
    fn explains_mistakes() {
        assert!(err("not_nul(id)").contains("unknown check `not_nul`"));
        assert!(err("expression(amount >= )").contains("malformed predicate"));
        assert!(err("row_count(10, 1)").contains("above the maximum"));
        assert!(err("unique()").contains("one or more columns"));
        assert!(err("freshness(ts, soon)").contains("30m, 12h, 2d"));
        assert!(err("accepted_values(s, 'a')").contains("must be a list"));
        assert!(err("not_null(id").contains("missing `)`"));
    }
}
