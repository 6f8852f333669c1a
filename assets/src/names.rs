//! Asset and source names: what is valid, and "did you mean" suggestions.

/// Whether `name` is a valid asset or source name: a lowercase SQL
/// identifier (`[a-z_][a-z0-9_]*`), so that an unquoted reference in SQL
/// (which DataFusion lowercases) finds it.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The name in `candidates` closest to `name`, if any is close enough to be
/// a plausible typo.
pub fn closest_name<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A valid name derived from `raw`, to suggest when `raw` is invalid.
pub(crate) fn suggest_valid_name(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_lowercase_identifiers() {
        assert!(is_valid_name("stg_orders"));
        assert!(is_valid_name("_x1"));
        assert!(!is_valid_name("Stg"));
        assert!(!is_valid_name("1abc"));
        assert!(!is_valid_name("a-b"));
        assert!(!is_valid_name(""));
    }

    #[test]
    fn suggests_close_names_only() {
        let names = ["stg_orders", "stg_customers", "raw_orders"];
        assert_eq!(closest_name("stg_order", names), Some("stg_orders"));
        assert_eq!(closest_name("zzz", names), None);
        assert_eq!(suggest_valid_name("Stg-Orders"), "stg_orders");
    }
}
