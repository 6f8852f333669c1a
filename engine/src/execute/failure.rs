//! Why a unit's build failed — the message, check results, and whether
//! building again may succeed — shared by the build and the writer (its
//! own module, so neither imports the other for it).

use datafusion::error::DataFusionError;

use crate::error::EngineError;
use crate::quality::checks::CheckOutcome;

/// Why a build failed: the message, check results when checks failed, and
/// whether the failure may pass.
#[derive(Debug)]
pub(crate) struct BuildFailure {
    pub(crate) error: String,
    pub(crate) checks: Vec<CheckOutcome>,
    /// Whether building again may succeed: judged where the failure
    /// happens, from the typed error ([`crate::error::is_transient`]: I/O,
    /// object store, network). SQL and planning errors, schema mismatches,
    /// failing checks, partition-guard violations and commit failures are
    /// not. The scheduler retries transient failures per `[retries]`.
    pub(crate) transient: bool,
}

impl BuildFailure {
    /// A failure saying `error`, caused by `cause` (transient or not by
    /// its type).
    pub(crate) fn caused_by(error: String, cause: &(dyn std::error::Error + 'static)) -> Self {
        BuildFailure {
            error,
            checks: Vec::new(),
            transient: crate::error::is_transient(cause),
        }
    }

    /// A DataFusion failure, its message prefixed by `context` (if any).
    pub(crate) fn datafusion(context: &str, e: DataFusionError) -> Self {
        let mut message = match context {
            "" => e.strip_backtrace(),
            _ => format!("{context}: {}", e.strip_backtrace()),
        };
        if matches!(e.find_root(), DataFusionError::ResourcesExhausted(_)) {
            message = format!(
                "the query needs more memory than the run's limit allows ([engine] memory_limit, or --memory-limit): {message}; raise the limit, or lower --jobs so fewer assets share it (sorts and aggregates spill past it, but a hash join holds its build side, the smaller input, whole)"
            );
        }
        BuildFailure::caused_by(message, &e)
    }
}

/// A failure that building again would repeat (user input, a check, a bug).
impl From<String> for BuildFailure {
    fn from(error: String) -> Self {
        BuildFailure {
            error,
            checks: Vec::new(),
            transient: false,
        }
    }
}

impl From<EngineError> for BuildFailure {
    fn from(e: EngineError) -> Self {
        BuildFailure {
            transient: e.is_transient(),
            error: e.to_string(),
            checks: Vec::new(),
        }
    }
}
