//! Engine errors, by whose fault they are.

use cairn_assets::ProjectError;
use cairn_catalog::CatalogError;

use crate::selection::SelectionError;

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
    /// The storage URL is bad or storage failed.
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
    /// DataFusion rejected or failed a query.
    #[error("{0}")]
    Query(String),
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
                | EngineError::Catalog(CatalogError::BadUrl { .. })
        ) || matches!(self, EngineError::Storage { reason, .. } if reason.starts_with("unsupported"))
    }
}
