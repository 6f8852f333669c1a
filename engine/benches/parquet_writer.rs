//! Parquet writer settings, measured: how long writing an output takes,
//! how large it is and how long reading it back takes, for Cairn's
//! settings and the alternatives they were chosen against.
//!
//! ```text
//! cargo bench -p cairn-engine --bench parquet_writer -- FILE_OR_DIR ... [--repeats K]
//! ```
//!
//! Every `.parquet` file named (or found in a named folder, recursively) is
//! read into memory once; each candidate then writes all of them
//! (single-threaded, into memory, as a build does, minus the store) K times
//! (default 3), and the written bytes are decoded again. Printed per
//! candidate: min write time, total size, min read time. Good inputs are a
//! real warehouse, e.g. the peers' DAG after `cargo bench -p cairn-cli
//! --bench peers -- 100 --keep DIR` (its `DIR/n100/cairn/warehouse`).

#[expect(
    dead_code,
    reason = "helpers shared by the benchmarks; this one uses a few"
)]
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_engine::bench::{float_columns, output_writer_properties};
use common::{BoxResult, build_kind, parse_count};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::{Compression, Encoding, ZstdLevel};
use datafusion::parquet::file::properties::{
    EnabledStatistics, WriterProperties, WriterPropertiesBuilder,
};
use datafusion::parquet::schema::types::ColumnPath;

/// A way of writing, by the output's schema.
type Candidate = (&'static str, fn(&SchemaRef) -> WriterProperties);

fn candidates() -> Vec<Candidate> {
    vec![
        ("cairn (output_writer_properties)", output_writer_properties),
        ("parquet defaults + snappy (cairn before)", |_| {
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build()
        }),
        ("cairn, floats snappy", |s| {
            cairn_with(s, |b, c| b.set_column_compression(c, Compression::SNAPPY)).build()
        }),
        ("cairn, floats lz4_raw", |s| {
            cairn_with(s, |b, c| b.set_column_compression(c, Compression::LZ4_RAW)).build()
        }),
        ("cairn, floats byte_stream_split + snappy", |s| {
            cairn_with(s, |b, c| {
                b.set_column_dictionary_enabled(c.clone(), false)
                    .set_column_encoding(c.clone(), Encoding::BYTE_STREAM_SPLIT)
                    .set_column_compression(c, Compression::SNAPPY)
            })
            .build()
        }),
        ("snappy, no dictionary for floats", |s| {
            per_float(s, Compression::SNAPPY, |b, c| {
                b.set_column_dictionary_enabled(c, false)
            })
            .build()
        }),
        ("cairn, float dictionary <= 256 KiB", |s| {
            cairn_with(s, |b, c| {
                b.set_column_dictionary_page_size_limit(c, 256 * 1024)
            })
            .build()
        }),
        ("cairn, chunk statistics", |s| {
            output_writer_properties(s)
                .into_builder()
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .build()
        }),
        ("snappy, dictionary for strings only", |s| {
            let mut b = WriterProperties::builder().set_compression(Compression::SNAPPY);
            for f in s.fields() {
                if !is_string(f.data_type()) {
                    b = b.set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), false);
                }
            }
            b.build()
        }),
        ("zstd(1), no dictionary for floats", |s| {
            per_float(s, Compression::ZSTD(ZstdLevel::default()), |b, c| {
                b.set_column_dictionary_enabled(c, false)
            })
            .build()
        }),
    ]
}

/// A change to each float column's settings.
type FloatSetting = fn(WriterPropertiesBuilder, ColumnPath) -> WriterPropertiesBuilder;

/// Cairn's settings, with `float` applied on top to each float column.
fn cairn_with(schema: &SchemaRef, float: FloatSetting) -> WriterPropertiesBuilder {
    float_columns(schema).fold(output_writer_properties(schema).into_builder(), float)
}

/// `compression` for every column, and `float` applied to each float column.
fn per_float(
    schema: &SchemaRef,
    compression: Compression,
    float: FloatSetting,
) -> WriterPropertiesBuilder {
    float_columns(schema).fold(
        WriterProperties::builder().set_compression(compression),
        float,
    )
}

fn is_string(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

fn main() -> BoxResult<()> {
    let mut inputs = Vec::new();
    let mut repeats = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--repeats" {
            repeats = parse_count(&args.next().ok_or("--repeats needs a value")?)?;
        } else if !arg.starts_with('-') {
            collect(Path::new(&arg), &mut inputs)?;
        }
    }
    if inputs.is_empty() {
        return Err("name Parquet files or folders holding them".into());
    }
    let tables: Vec<(SchemaRef, Vec<RecordBatch>)> = inputs
        .iter()
        .map(|p| read(Bytes::from(std::fs::read(p)?)))
        .collect::<BoxResult<_>>()?;
    let rows: usize = tables
        .iter()
        .flat_map(|(_, b)| b)
        .map(|b| b.num_rows())
        .sum();
    println!("parquet writer settings");
    println!(
        "  {} files, {rows} rows, repeats: {repeats}, build: {}",
        tables.len(),
        build_kind()
    );
    println!(
        "  {:<46} {:>10} {:>10} {:>10}",
        "candidate", "write", "MB", "read"
    );
    // Candidates take turns, so that a slow moment of the machine does
    // not fall on one of them.
    let candidates = candidates();
    let mut best = vec![(Duration::MAX, Duration::MAX, 0usize); candidates.len()];
    for _ in 0..repeats {
        for ((_, props), best) in candidates.iter().zip(&mut best) {
            let mut written = Vec::with_capacity(tables.len());
            let t = Instant::now();
            for (schema, batches) in &tables {
                let mut w =
                    ArrowWriter::try_new(Vec::new(), Arc::clone(schema), Some(props(schema)))?;
                for b in batches {
                    w.write(b)?;
                }
                written.push(Bytes::from(w.into_inner()?));
            }
            best.0 = best.0.min(t.elapsed());
            best.2 = written.iter().map(Bytes::len).sum::<usize>();
            let t = Instant::now();
            for bytes in written {
                std::hint::black_box(read(bytes)?);
            }
            best.1 = best.1.min(t.elapsed());
        }
    }
    for ((name, _), (write, read, size)) in candidates.iter().zip(best) {
        println!(
            "  {name:<46} {:>8.0}ms {:>10.1} {:>8.0}ms",
            write.as_secs_f64() * 1e3,
            size as f64 / 1e6,
            read.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> BoxResult<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for e in entries {
            collect(&e, out)?;
        }
    } else if path.extension().is_some_and(|e| e == "parquet") {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn read(bytes: Bytes) -> BoxResult<(SchemaRef, Vec<RecordBatch>)> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let schema = Arc::clone(builder.schema());
    let batches = builder.build()?.collect::<Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}
