//! How outputs are written as Parquet: the writer settings, chosen by
//! measurement (`cargo bench -p cairn-engine --bench parquet_writer`, see
//! README "Performance").

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{WriterProperties, WriterPropertiesBuilder};
use datafusion::parquet::schema::types::ColumnPath;

/// The largest dictionary a float column keeps before the writer falls
/// back to plain values for the rest of the column chunk: 8,192 distinct
/// doubles. Other types keep parquet's default (1 MiB).
///
/// A float column is usually a measure, nearly every value distinct: a
/// dictionary does not pay, and the writer falls back anyway, but only once
/// the dictionary is full. Interning up to 1 MiB of distinct values (131,072
/// doubles, hashed and rehashed) before falling back was the largest single
/// cost of writing the peers' DAG. A float column of few distinct values (a
/// price list, a rate) still fits and keeps its dictionary.
pub const FLOAT_DICTIONARY_LIMIT: usize = 64 * 1024;

/// The writer settings of an output of `schema`: parquet's defaults with
/// snappy, except float columns ([`float_column`]).
pub fn output_writer_properties(schema: &SchemaRef) -> WriterProperties {
    let builder = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("cairn {}", env!("CARGO_PKG_VERSION")));
    float_columns(schema).fold(builder, float_column).build()
}

/// A float column: a small dictionary ([`FLOAT_DICTIONARY_LIMIT`]) and no
/// compression. Snappy saves about 9% of plain doubles' bytes (the peers'
/// DAG: 1,909 MB to 1,740 MB), and compressing them on every write and
/// decompressing them on every read cost ~4% of a full build's CPU.
fn float_column(builder: WriterPropertiesBuilder, column: ColumnPath) -> WriterPropertiesBuilder {
    builder
        .set_column_dictionary_page_size_limit(column.clone(), FLOAT_DICTIONARY_LIMIT)
        .set_column_compression(column, Compression::UNCOMPRESSED)
}

/// The columns of `schema` written with the float settings.
pub fn float_columns(schema: &SchemaRef) -> impl Iterator<Item = ColumnPath> + '_ {
    schema
        .fields()
        .iter()
        .filter(|f| {
            matches!(
                f.data_type(),
                DataType::Float16 | DataType::Float32 | DataType::Float64
            )
        })
        .map(|f| ColumnPath::from(f.name().as_str()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::basic::{Encoding, PageType};
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    /// How a column was written: its codec and each data page's encoding.
    struct Written {
        name: String,
        compression: Compression,
        pages: Vec<Encoding>,
    }

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    /// Writes `columns` with the output settings.
    fn written(columns: Vec<(&str, ArrayRef)>) -> TestResult<Vec<Written>> {
        let batch = RecordBatch::try_from_iter(columns)?;
        let schema = batch.schema();
        let props = output_writer_properties(&schema);
        let mut writer = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props))?;
        writer.write(&batch)?;
        let reader = SerializedFileReader::new(bytes::Bytes::from(writer.into_inner()?))?;
        let row_group = reader.get_row_group(0)?;
        let mut columns = Vec::new();
        for (i, field) in schema.fields().iter().enumerate() {
            let mut pages = Vec::new();
            for page in row_group.get_column_page_reader(i)? {
                let page = page?;
                if page.page_type() != PageType::DICTIONARY_PAGE {
                    pages.push(page.encoding());
                }
            }
            columns.push(Written {
                name: field.name().clone(),
                compression: reader.metadata().row_group(0).column(i).compression(),
                pages,
            });
        }
        Ok(columns)
    }

    #[test]
    fn float_columns_are_uncompressed_with_a_small_dictionary() -> TestResult {
        let rows = 100_000;
        // Every value distinct: 800 KB of doubles, under parquet's default
        // 1 MiB dictionary limit, so without the float limit the whole
        // column would be interned.
        let measure: ArrayRef = Arc::new(Float64Array::from_iter_values(
            (0..rows).map(|i| i as f64 * 1.37),
        ));
        let rates: ArrayRef = Arc::new(Float64Array::from_iter_values(
            (0..rows).map(|i| (i % 50) as f64 / 8.0),
        ));
        // Integers keep parquet's default limit: 20,000 distinct ids
        // (160 KB) stay dictionary-encoded.
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i % 20_000)));
        let [measure, rates, ids] =
            &written(vec![("measure", measure), ("rates", rates), ("ids", ids)])?[..]
        else {
            return Err("three columns written".into());
        };
        let count =
            |c: &Written, encoding: Encoding| c.pages.iter().filter(|e| **e == encoding).count();

        // The measure's first 8,192 values fill the dictionary: one page
        // of indices, then plain pages.
        assert_eq!(
            count(measure, Encoding::RLE_DICTIONARY),
            1,
            "{:?}",
            measure.pages
        );
        assert!(count(measure, Encoding::PLAIN) >= 1, "{:?}", measure.pages);
        for c in [rates, ids] {
            assert_eq!(
                count(c, Encoding::RLE_DICTIONARY),
                c.pages.len(),
                "{}: {:?}",
                c.name,
                c.pages
            );
        }
        // Floats are stored uncompressed, the rest with snappy.
        assert_eq!(measure.compression, Compression::UNCOMPRESSED);
        assert_eq!(rates.compression, Compression::UNCOMPRESSED);
        assert_eq!(ids.compression, Compression::SNAPPY);
        Ok(())
    }
}
