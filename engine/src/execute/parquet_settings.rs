//! How outputs are written as Parquet: the writer settings, chosen by
//! measurement (`cargo bench -p cairn-engine --bench parquet_writer`, see
//! README "Performance").

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;

/// The writer settings of an output of `schema`.
pub fn output_writer_properties(_schema: &SchemaRef) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("cairn {}", env!("CARGO_PKG_VERSION")))
        .build()
}
