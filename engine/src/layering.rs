//! The engine's layers import one way: each folder of `engine/src` may use
//! only itself and the folders before it in [`LAYERS`]. This test reads
//! every `crate::` path in the sources (imports and inline paths alike) and
//! fails on the first one that reaches a later layer.

use std::path::{Path, PathBuf};

/// The layers, in order; `error` (the engine's error type, which names
/// model errors such as a bad selection) sits with `model`; `api` (the
/// facade) and `lib` may use everything.
const LAYERS: &[&[&str]] = &[
    &["error", "model"],
    &["state"],
    &["plan"],
    &["session"],
    &["compile"],
    &["quality"],
    &["lineage"],
    &["records"],
    &["alerts"],
    &["execute"],
    &["queue"],
    &["automation"],
    &["api"],
];

/// Test-only modules that exercise the engine through its facade.
const EXEMPT: &[&str] = &["plan/fixtures.rs", "layering.rs", "lib.rs"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `(line, first path segment)` of every `crate::` path, including the
/// segments of `crate::{a, b::c}` groups.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let seg = item.trim().split("::").next().unwrap_or("").trim();
                    if !seg.is_empty() {
                        out.push((n + 1, seg.to_owned()));
                    }
                }
            } else {
                let seg: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push((n + 1, seg));
            }
        }
    }
    out
}

#[test]
fn no_module_imports_from_a_later_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    assert!(files.len() > 30, "read the sources: {}", files.len());
    let mut violations = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        if EXEMPT.contains(&rel.as_str()) {
            continue;
        }
        let module = rel.split('/').next().unwrap_or("").trim_end_matches(".rs");
        let Some(own) = layer_of(module) else {
            violations.push(format!(
                "{rel}: `{module}` is in no layer; add it to LAYERS"
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{rel}: {e}"));
        for (line, seg) in crate_paths(&text) {
            match layer_of(&seg) {
                Some(used) if used > own => violations.push(format!(
                    "{rel}:{line}: layer `{module}` uses `crate::{seg}`, a later layer"
                )),
                Some(_) => {}
                None => violations.push(format!("{rel}:{line}: `crate::{seg}` is in no layer")),
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// Every module (file) and the modules its non-test code uses.
fn module_graph(root: &Path, files: &[PathBuf]) -> std::collections::BTreeMap<String, Vec<String>> {
    let module_of = |file: &Path| {
        let rel = file
            .strip_prefix(root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        rel.trim_end_matches(".rs")
            .trim_end_matches("/mod")
            .replace('/', "::")
    };
    let names: std::collections::BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    let mut graph = std::collections::BTreeMap::new();
    for file in files {
        let module = module_of(file);
        if ["lib", "layering", "plan::fixtures"].contains(&module.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{e}"));
        // Test modules may use anything.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut uses: Vec<String> = Vec::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or("");
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let parts: Vec<&str> = path.split("::").collect();
                // The longest prefix naming a module.
                if let Some(target) = (1..=parts.len())
                    .rev()
                    .map(|k| parts[..k].join("::"))
                    .find(|c| names.contains(c))
                    .filter(|t| *t != module)
                {
                    uses.push(target);
                }
            }
        }
        uses.sort();
        uses.dedup();
        graph.insert(module, uses);
    }
    graph
}

#[test]
fn no_import_cycle_between_modules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let graph = module_graph(&root, &files);
    // Depth-first search for a back edge; report the cycle it closes.
    fn visit<'a>(
        m: &'a str,
        graph: &'a std::collections::BTreeMap<String, Vec<String>>,
        path: &mut Vec<&'a str>,
        done: &mut std::collections::BTreeSet<&'a str>,
    ) -> Option<String> {
        if let Some(i) = path.iter().position(|p| *p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m);
            return Some(cycle.join(" -> "));
        }
        if !done.insert(m) {
            return None;
        }
        path.push(m);
        for next in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for m in graph.keys() {
        let cycle = visit(m, &graph, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "import cycle: {}",
            cycle.unwrap_or_default()
        );
    }
}

#[test]
fn the_check_sees_groups_and_inline_paths() {
    let paths = crate_paths(
        "use crate::{model::graph, state};\nfn f() { crate::execute::run::x(); } // crate::api\n",
    );
    let segs: Vec<&str> = paths.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(segs, ["model", "state", "execute"]);
}
