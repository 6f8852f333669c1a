//! Engine errors, by whose fault they are.

use cairn_assets::ProjectError;
use cairn_catalog::CatalogError;
use datafusion::error::DataFusionError;

use crate::model::selection::SelectionError;

/// What went wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The project (cairn.toml, asset files) is invalid: user input.
    #[error("{0}")]
    Project(#[from] ProjectError),
    /// A selection names nothing: user input.
    #[error("{0}")]
    Selection(#[from] SelectionError),
    /// A query or command argument is invalid: user input.
    #[error("{0}")]
    Usage(String),
    /// The catalog failed (unreachable, corrupt) or its URL is bad.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The storage URL is malformed or names an unsupported store: user
    /// input (cairn.toml).
    #[error("storage {url}: {reason}")]
    BadStorageUrl {
        /// The storage URL.
        url: String,
        /// What is wrong, with a hint.
        reason: String,
    },
    /// Storage failed (unreachable, permissions, missing objects).
    #[error("storage {url}: {reason}")]
    Storage {
        /// The storage URL.
        url: String,
        /// What failed, with a hint.
        reason: String,
    },
    /// Reading project data (sources) failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// DataFusion rejected a query: bad SQL, unknown columns or tables,
    /// types that do not fit (user input).
    #[error("{0}")]
    Query(String),
    /// DataFusion failed while running a valid query: I/O, object store,
    /// memory exhausted, unreadable files (the environment).
    #[error("{0}")]
    Execution(String),
    /// A bug.
    #[error("internal error: {0} (this is a bug, please report it)")]
    Internal(String),
}

impl EngineError {
    /// Whether the user's input (project, selection, arguments) is at fault,
    /// as opposed to the environment or a bug. The CLI maps this to exit 2.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            EngineError::Project(_)
                | EngineError::Selection(_)
                | EngineError::Usage(_)
                | EngineError::Query(_)
                | EngineError::BadStorageUrl { .. }
                | EngineError::Catalog(CatalogError::BadUrl { .. })
        )
    }

    /// A DataFusion error, classified by whose fault it is (by variant,
    /// never by message): the query's ([`EngineError::Query`]), the
    /// environment's ([`EngineError::Execution`]) or a bug
    /// ([`EngineError::Internal`]). `context` prefixes the message.
    pub fn from_datafusion(context: &str, e: DataFusionError) -> Self {
        let message = if context.is_empty() {
            e.strip_backtrace()
        } else {
            format!("{context}: {}", e.strip_backtrace())
        };
        match fault(&e) {
            Fault::Query => EngineError::Query(message),
            Fault::Environment => EngineError::Execution(message),
            Fault::Bug => EngineError::Internal(message),
        }
    }
}

/// Whose fault a DataFusion error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Query,
    Environment,
    Bug,
}

fn fault(e: &DataFusionError) -> Fault {
    match e {
        DataFusionError::SQL(..)
        | DataFusionError::Plan(_)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_)
        | DataFusionError::Configuration(_) => Fault::Query,
        DataFusionError::Internal(_) => Fault::Bug,
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => fault(inner),
        DataFusionError::Shared(inner) => fault(inner),
        DataFusionError::Collection(errors) => errors.first().map_or(Fault::Environment, fault),
        // Arrow errors while planning are type mismatches (the query's);
        // while running they are mostly casts of bad data, also the
        // query's to fix (e.g. `try_cast`).
        DataFusionError::ArrowError(..) => Fault::Query,
        DataFusionError::ParquetError(_)
        | DataFusionError::ObjectStore(_)
        | DataFusionError::IoError(_)
        | DataFusionError::ResourcesExhausted(_)
        | DataFusionError::External(_)
        | DataFusionError::ExecutionJoin(_)
        | DataFusionError::Execution(_)
        | DataFusionError::Substrait(_)
        | DataFusionError::Ffi(_) => Fault::Environment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datafusion_errors_are_classified_by_variant() {
        let user = |e: DataFusionError| EngineError::from_datafusion("", e).is_user_error();
        assert!(user(DataFusionError::Plan("no column x".into())));
        assert!(user(DataFusionError::Context(
            "planning".into(),
            Box::new(DataFusionError::NotImplemented("lateral".into()))
        )));
        assert!(!user(DataFusionError::ResourcesExhausted("memory".into())));
        assert!(!user(DataFusionError::IoError(std::io::Error::other(
            "disk"
        ))));
        assert!(!user(DataFusionError::ObjectStore(Box::new(
            object_store::Error::NotFound {
                path: "x".into(),
                source: "gone".into()
            }
        ))));
        assert!(matches!(
            EngineError::from_datafusion("q", DataFusionError::Internal("oops".into())),
            EngineError::Internal(m) if m.starts_with("q: ")
        ));
    }
}
