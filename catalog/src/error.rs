//! Catalog errors, by whose fault they are.

/// What went wrong talking to the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog URL in cairn.toml is malformed or names an unsupported backend.
    #[error("catalog url `{url}`: {reason}")]
    BadUrl {
        /// The URL as written.
        url: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The catalog database could not be opened, read or written.
    #[error("catalog database {location}: {source}")]
    Database {
        /// File or server.
        location: String,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The catalog was written by a newer Cairn.
    #[error(
        "catalog {location} has schema version {found}, newer than this cairn understands ({supported}); upgrade cairn"
    )]
    TooNew {
        /// File or server.
        location: String,
        /// Version found.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// Stored data that cannot be read back: a bug or a hand-edited catalog.
    #[error("catalog {location} holds invalid data: {detail} (this is a bug, please report it)")]
    Corrupt {
        /// File or server.
        location: String,
        /// What was invalid.
        detail: String,
    },
    /// `cairn catalog migrate` was pointed at a catalog that already holds
    /// records (or at the source itself).
    #[error(
        "catalog {location} is not empty: {tables}; migrate into a new, empty database (createdb NAME, or a new sqlite:// file)"
    )]
    NotEmpty {
        /// File or server.
        location: String,
        /// What it already holds.
        tables: String,
    },
    /// I/O creating the catalog's directory.
    #[error("cannot create catalog directory {path}: {source}")]
    Io {
        /// The directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
