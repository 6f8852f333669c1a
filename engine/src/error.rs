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
    /// The Ballista cluster of `[engine] url` cannot be reached (the
    /// environment).
    #[error("engine {url}: {reason}")]
    Cluster {
        /// The URL as written in `[engine] url`.
        url: String,
        /// What failed, with a hint.
        reason: String,
    },
    /// DataFusion rejected a query: bad SQL, unknown columns or tables,
    /// types that do not fit (user input).
    #[error("{0}")]
    Query(String),
    /// DataFusion failed while running a valid query: I/O, object store,
    /// memory exhausted, unreadable files (the environment).
    #[error("{0}")]
    Execution(String),
    /// The environment failed in a way that may pass: an I/O, object store
    /// or network error while running a valid query. Retrying the same
    /// work may succeed (see [`is_transient`]).
    #[error("{0}")]
    Transient(String),
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
        if transient_datafusion(&e) {
            return EngineError::Transient(message);
        }
        match fault(&e) {
            Fault::Query => EngineError::Query(message),
            Fault::Environment => EngineError::Execution(message),
            Fault::Bug => EngineError::Internal(message),
        }
    }

    /// Whether retrying the same work may succeed (see [`is_transient`]):
    /// a transient DataFusion failure, or an I/O error of a passing kind.
    /// User errors, the catalog's failures and bugs are not.
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Transient(_) => true,
            EngineError::Io { source, .. } => transient_io(source),
            _ => false,
        }
    }
}

/// Whether an error may pass if the same work is tried again, judged by
/// the error's type and variant (never its message):
///
/// - transient: object store failures other than the definite answers
///   (`Generic`, the variant network, throttling and local I/O failures
///   come as), and I/O errors other than not found, permission denied,
///   invalid input or data, unexpected end of file and unsupported; also
///   when wrapped by DataFusion, Arrow or Parquet errors;
/// - never: SQL and planning errors, schema and type mismatches, casts and
///   arithmetic on bad data, exhausted memory (the same query needs the
///   same memory), a missing or forbidden object, bugs.
///
/// An error of another type is judged by its source, if any.
pub(crate) fn is_transient(e: &(dyn std::error::Error + 'static)) -> bool {
    use datafusion::arrow::error::ArrowError;
    use datafusion::parquet::errors::ParquetError;
    if let Some(e) = e.downcast_ref::<DataFusionError>() {
        transient_datafusion(e)
    } else if let Some(e) = e.downcast_ref::<object_store::Error>() {
        transient_object_store(e)
    } else if let Some(e) = e.downcast_ref::<std::io::Error>() {
        transient_io(e)
    } else if let Some(e) = e.downcast_ref::<ParquetError>() {
        match e {
            ParquetError::External(inner) => is_transient(inner.as_ref()),
            _ => false,
        }
    } else if let Some(e) = e.downcast_ref::<ArrowError>() {
        match e {
            ArrowError::IoError(_, inner) => transient_io(inner),
            ArrowError::ExternalError(inner) => is_transient(inner.as_ref()),
            _ => false,
        }
    } else if let Some(e) = e.downcast_ref::<EngineError>() {
        e.is_transient()
    } else {
        e.source().is_some_and(is_transient)
    }
}

fn transient_datafusion(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::ObjectStore(e) => transient_object_store(e),
        DataFusionError::IoError(e) => transient_io(e),
        DataFusionError::ParquetError(e) => is_transient(e.as_ref()),
        DataFusionError::ArrowError(e, _) => is_transient(e.as_ref()),
        DataFusionError::External(e) => is_transient(e.as_ref()),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            transient_datafusion(inner)
        }
        DataFusionError::Shared(inner) => transient_datafusion(inner),
        // As `fault` does: the first error decides.
        DataFusionError::Collection(errors) => errors.first().is_some_and(transient_datafusion),
        _ => false,
    }
}

fn transient_object_store(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    match e {
        // Network, throttling, server errors and local I/O all come as
        // `Generic`; an I/O error among its causes says more.
        E::Generic { source, .. } => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
            while let Some(e) = cause {
                if let Some(io) = e.downcast_ref::<std::io::Error>() {
                    return transient_io(io);
                }
                cause = e.source();
            }
            true
        }
        E::JoinError { .. } => true,
        // Definite answers: asking again gets the same one.
        _ => false,
    }
}

fn transient_io(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    // An object store error passed through an I/O interface (a buffered
    // writer, a Parquet sink) is judged as itself.
    if let Some(inner) = e.get_ref() {
        if let Some(store) = inner.downcast_ref::<object_store::Error>() {
            return transient_object_store(store);
        }
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return transient_io(io);
        }
    }
    !matches!(
        e.kind(),
        K::NotFound
            | K::PermissionDenied
            | K::InvalidInput
            | K::InvalidData
            | K::UnexpectedEof
            | K::Unsupported
    )
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

    fn store_error(e: object_store::Error) -> DataFusionError {
        DataFusionError::ObjectStore(Box::new(e))
    }

    fn unreachable_store() -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: "connection reset by peer".into(),
        }
    }

    #[test]
    fn store_and_io_failures_are_transient() {
        let transient = |e: DataFusionError| is_transient(&e);
        assert!(transient(store_error(unreachable_store())));
        assert!(transient(DataFusionError::IoError(std::io::Error::from(
            std::io::ErrorKind::TimedOut
        ))));
        // Through a buffered writer and a Parquet sink, as a failed upload
        // of an output file arrives.
        let via_writer = std::io::Error::from(unreachable_store());
        let parquet = datafusion::parquet::errors::ParquetError::from(via_writer);
        assert!(is_transient(&parquet));
        assert!(transient(DataFusionError::ParquetError(Box::new(
            datafusion::parquet::errors::ParquetError::External(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset
            )))
        ))));
        assert!(transient(DataFusionError::Context(
            "reading source".into(),
            Box::new(DataFusionError::External(Box::new(unreachable_store())))
        )));
        assert!(transient(DataFusionError::ArrowError(
            Box::new(datafusion::arrow::error::ArrowError::IoError(
                "read".into(),
                std::io::Error::from(std::io::ErrorKind::Interrupted)
            )),
            None
        )));
        let engine = EngineError::from_datafusion("source `s`", store_error(unreachable_store()));
        assert!(matches!(engine, EngineError::Transient(_)), "{engine:?}");
        assert!(engine.is_transient() && !engine.is_user_error());
        assert!(is_transient(&engine));
    }

    #[test]
    fn query_errors_and_definite_answers_are_not_transient() {
        let transient = |e: DataFusionError| is_transient(&e);
        assert!(!transient(DataFusionError::Plan("no column x".into())));
        assert!(!transient(DataFusionError::SchemaError(
            Box::new(datafusion::common::SchemaError::AmbiguousReference {
                field: Box::new(datafusion::common::Column::from_name("x"))
            }),
            Box::new(None)
        )));
        assert!(!transient(DataFusionError::ArrowError(
            Box::new(datafusion::arrow::error::ArrowError::DivideByZero),
            None
        )));
        assert!(!transient(DataFusionError::ArrowError(
            Box::new(datafusion::arrow::error::ArrowError::CastError(
                "'x' to Int64".into()
            )),
            None
        )));
        assert!(!transient(DataFusionError::Execution(
            "partition guard".into()
        )));
        assert!(!transient(DataFusionError::ResourcesExhausted(
            "memory".into()
        )));
        assert!(!transient(DataFusionError::Internal("oops".into())));
        assert!(!transient(store_error(object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into()
        })));
        assert!(!transient(store_error(
            object_store::Error::PermissionDenied {
                path: "x".into(),
                source: "denied".into()
            }
        )));
        assert!(!transient(DataFusionError::IoError(std::io::Error::from(
            std::io::ErrorKind::NotFound
        ))));
        // A local file that is not there, through the object store.
        assert!(!transient(store_error(object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
        })));
        let user = EngineError::from_datafusion("", DataFusionError::Plan("bad".into()));
        assert!(!user.is_transient());
        assert!(
            !EngineError::Catalog(CatalogError::BadUrl {
                url: "x".into(),
                reason: "y".into()
            })
            .is_transient()
        );
    }
}
