//! How outputs are written as Parquet: the writer settings, chosen by
//! measurement (`cargo bench -p cairn-engine --bench parquet_writer`, see
//! README "Performance").

use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

/// The writer settings of every output (the same for every column type:
/// the benchmark found no per-type choice worth its cost).
pub fn output_writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("cairn {}", env!("CARGO_PKG_VERSION")))
        .build()
}
