//! The audit log: every action that changes state or data, with who, when,
//! from where (host and the project's git commit) and what. The catalog
//! keeps it append-only; nothing in Cairn updates or deletes entries.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use chrono::Utc;

use cairn_catalog::NewAuditEntry;

use crate::error::EngineError;
use crate::model::version::code_version;
use crate::model::workspace::Workspace;

/// The action recorded when definitions changed since the last recorded state.
pub const CONFIG_CHANGED: &str = "config_changed";

/// The project's git commit, when it is a git work tree (`-dirty` when it
/// has uncommitted changes).
pub fn git_commit(root: &Path) -> Option<String> {
    let head = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    if !head.status.success() {
        return None;
    }
    let mut commit = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let dirty = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    if dirty {
        commit.push_str("-dirty");
    }
    (!commit.is_empty()).then_some(commit)
}

/// Appends one entry for the current user and host.
pub(crate) fn audit(
    ws: &Workspace,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<(), EngineError> {
    ws.catalog.append_audit(&NewAuditEntry {
        at: Utc::now(),
        principal: ws.principal(),
        host: crate::model::whoami::host(),
        git_commit: git_commit(&ws.project.root),
        action: action.to_owned(),
        target: target.to_owned(),
        details: details.to_string(),
    })?;
    Ok(())
}

/// Records a `config_changed` entry when asset definitions or project
/// configuration differ from the last recorded state (the first state
/// is recorded too), naming what was added, removed or changed.
pub(crate) fn audit_config_changes(ws: &Workspace) -> Result<(), EngineError> {
    let mut now: BTreeMap<String, String> = ws
        .project
        .assets
        .values()
        .map(|a| (format!("asset:{}", a.name), code_version(a)))
        .collect();
    let config_text = std::fs::read(ws.project.root.join("cairn.toml")).unwrap_or_default();
    now.insert(
        "cairn.toml".to_owned(),
        blake3::hash(&config_text).to_hex().to_string(),
    );
    let last = ws
        .catalog
        .audit_log(None, None)?
        .into_iter()
        .rev()
        .find(|e| e.entry.action == CONFIG_CHANGED)
        .and_then(|e| serde_json::from_str::<serde_json::Value>(&e.entry.details).ok())
        .and_then(|d| serde_json::from_value::<BTreeMap<String, String>>(d["state"].clone()).ok())
        .unwrap_or_default();
    if last == now {
        return Ok(());
    }
    let changed: Vec<&String> = now
        .iter()
        .filter(|(k, v)| last.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k)
        .collect();
    let added: Vec<&String> = now.keys().filter(|k| !last.contains_key(*k)).collect();
    let removed: Vec<&String> = last.keys().filter(|k| !now.contains_key(*k)).collect();
    let mut target: Vec<String> = changed
        .iter()
        .chain(&added)
        .chain(&removed)
        .map(|s| (*s).clone())
        .collect();
    target.truncate(20);
    audit(
        ws,
        CONFIG_CHANGED,
        &target.join(", "),
        serde_json::json!({ "changed": changed, "added": added, "removed": removed, "state": now }),
    )
}
