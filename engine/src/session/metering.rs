//! Measuring what one materialization costs, exactly rather than by
//! estimate: an object store wrapper counting requests and bytes, a memory
//! pool remembering its peak, and DataFusion's own operator metrics. Each
//! asset partition runs in its own session with its own meters, so the
//! figures belong to it alone even when partitions run concurrently.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use datafusion::common::ScalarValue;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

use datafusion::arrow::datatypes::Schema;

/// Request and byte counts through one [`CountingStore`].
#[derive(Debug, Default)]
pub struct StoreCounts {
    /// GET requests (including ranged reads and HEAD).
    pub read_requests: AtomicU64,
    /// Bytes returned by GETs.
    pub bytes_read: AtomicU64,
    /// PUT requests (including multipart parts).
    pub write_requests: AtomicU64,
    /// Bytes sent by PUTs.
    pub bytes_written: AtomicU64,
    /// LIST, DELETE and COPY requests.
    pub other_requests: AtomicU64,
    /// Distinct objects read (GET or ranged GET), by path.
    objects_read: std::sync::Mutex<std::collections::HashSet<Path>>,
}

impl StoreCounts {
    fn read_object(&self, location: &Path) {
        // A poisoned lock only means another reader panicked mid-insert;
        // the set itself is still usable.
        let mut set = self
            .objects_read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !set.contains(location) {
            set.insert(location.clone());
        }
    }

    /// How many distinct objects other than `own` (a materialization's
    /// output, which it reads back) have been read so far.
    pub fn objects_read_except(&self, own: &Path) -> u64 {
        let set = self
            .objects_read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (set.len() - usize::from(set.contains(own))) as u64
    }
}

/// An object store that counts what passes through it.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    /// The counts.
    pub counts: Arc<StoreCounts>,
}

impl CountingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        CountingStore {
            inner,
            counts: Arc::new(StoreCounts::default()),
        }
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        add(&self.counts.write_requests, 1);
        add(&self.counts.bytes_written, payload.content_length() as u64);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        add(&self.counts.write_requests, 1);
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(CountingUpload {
            inner: upload,
            counts: Arc::clone(&self.counts),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        // `head` arrives here too: a HEAD is an other request that reads
        // no bytes (its result's range spans the whole object).
        if options.head {
            add(&self.counts.other_requests, 1);
            return self.inner.get_opts(location, options).await;
        }
        add(&self.counts.read_requests, 1);
        self.counts.read_object(location);
        let result = self.inner.get_opts(location, options).await?;
        add(
            &self.counts.bytes_read,
            result.range.end.saturating_sub(result.range.start),
        );
        Ok(result)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        add(&self.counts.read_requests, ranges.len() as u64);
        self.counts.read_object(location);
        let result = self.inner.get_ranges(location, ranges).await?;
        add(
            &self.counts.bytes_read,
            result.iter().map(|b| b.len() as u64).sum(),
        );
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let counts = Arc::clone(&self.counts);
        let counted = locations
            .map(move |l| {
                add(&counts.other_requests, 1);
                l
            })
            .boxed();
        self.inner.delete_stream(counted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        add(&self.counts.other_requests, 1);
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        add(&self.counts.other_requests, 1);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        add(&self.counts.other_requests, 1);
        self.inner.copy_opts(from, to, options).await
    }
}

#[derive(Debug)]
struct CountingUpload {
    inner: Box<dyn MultipartUpload>,
    counts: Arc<StoreCounts>,
}

#[async_trait]
impl MultipartUpload for CountingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        add(&self.counts.write_requests, 1);
        add(&self.counts.bytes_written, data.content_length() as u64);
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        add(&self.counts.write_requests, 1);
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        add(&self.counts.other_requests, 1);
        self.inner.abort().await
    }
}

/// One unit's share of the run's memory pool, remembering the most the
/// unit held at once.
#[derive(Debug)]
pub struct PeakMemoryPool {
    /// The run's pool, which every unit computing at once draws from
    /// (bounded by `[engine] memory_limit`, or unbounded).
    inner: Arc<dyn MemoryPool>,
    /// What this unit holds now.
    held: AtomicUsize,
    peak: AtomicUsize,
}

impl PeakMemoryPool {
    /// A unit's view of the run's pool `inner`.
    pub fn over(inner: Arc<dyn MemoryPool>) -> Self {
        PeakMemoryPool {
            inner,
            held: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// The most this unit held at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    fn add(&self, additional: usize) {
        let held = self.held.fetch_add(additional, Ordering::Relaxed) + additional;
        self.peak.fetch_max(held, Ordering::Relaxed);
    }
}

impl fmt::Display for PeakMemoryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeakMemoryPool(peak {} bytes)", self.peak())
    }
}

impl MemoryPool for PeakMemoryPool {
    fn name(&self) -> &str {
        "cairn_peak"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.add(additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
        self.held.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(
        &self,
        reservation: &MemoryReservation,
        additional: usize,
    ) -> datafusion::error::Result<()> {
        self.inner.try_grow(reservation, additional)?;
        self.add(additional);
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

/// Operator metrics summed over a whole executed plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanMetrics {
    /// CPU time inside operators (nanoseconds, summed over threads).
    pub elapsed_compute_ns: u64,
    /// Bytes scanned by data sources.
    pub bytes_scanned: u64,
    /// Bytes spilled to disk.
    pub spilled_bytes: u64,
    /// Rows produced by the root.
    pub output_rows: u64,
}

/// Walks an executed plan and sums its metrics.
pub fn plan_metrics(plan: &Arc<dyn ExecutionPlan>) -> PlanMetrics {
    let mut m = PlanMetrics::default();
    if let Some(set) = plan.metrics() {
        m.output_rows = set.output_rows().unwrap_or(0) as u64;
    }
    fn walk(node: &Arc<dyn ExecutionPlan>, m: &mut PlanMetrics) {
        if let Some(set) = node.metrics() {
            let set = set.aggregate_by_name();
            m.elapsed_compute_ns += set.elapsed_compute().unwrap_or(0) as u64;
            m.spilled_bytes += set.spilled_bytes().unwrap_or(0) as u64;
            m.bytes_scanned += set
                .sum_by_name("bytes_scanned")
                .map(|v| v.as_usize() as u64)
                .unwrap_or(0);
        }
        for child in node.children() {
            walk(child, m);
        }
    }
    walk(plan, &mut m);
    m
}

/// A footer statistic as text. Parquet writers store a float column's
/// zero minimum as `-0.0` (the format asks them to, since `-0.0` and `0.0`
/// compare equal), which does not say the column holds a negative zero:
/// a float zero prints `0`.
fn stat_text(v: &ScalarValue) -> String {
    let zero = match v {
        ScalarValue::Float64(Some(x)) => *x == 0.0,
        ScalarValue::Float32(Some(x)) => *x == 0.0,
        ScalarValue::Float16(Some(x)) => f32::from(*x) == 0.0,
        _ => false,
    };
    if zero { "0".to_owned() } else { v.to_string() }
}

/// Per-column null counts and min/max from a written file's Parquet
/// statistics (rendered as text), in schema order.
pub fn column_stats(meta: &ParquetMetaData, schema: &Schema) -> Vec<cairn_catalog::ColumnStats> {
    let parquet_schema = meta.file_metadata().schema_descr();
    schema
        .fields()
        .iter()
        .map(|field| {
            let name = field.name().clone();
            let Ok(conv) = StatisticsConverter::try_new(&name, schema, parquet_schema) else {
                return cairn_catalog::ColumnStats {
                    name,
                    null_count: None,
                    min: None,
                    max: None,
                };
            };
            let groups = meta.row_groups().iter();
            let null_count = conv
                .row_group_null_counts(groups.clone())
                .ok()
                .map(|a| a.iter().flatten().sum::<u64>());
            let extreme = |array: datafusion::error::Result<datafusion::arrow::array::ArrayRef>,
                           want_max: bool| {
                let array = array.ok()?;
                let mut best: Option<ScalarValue> = None;
                for i in 0..array.len() {
                    let v = ScalarValue::try_from_array(&array, i).ok()?;
                    if v.is_null() {
                        continue;
                    }
                    best = match best {
                        None => Some(v),
                        Some(b) => {
                            let better = if want_max { v > b } else { v < b };
                            Some(if better { v } else { b })
                        }
                    };
                }
                best.map(|v| stat_text(&v))
            };
            let min = extreme(
                conv.row_group_mins(groups.clone()).map_err(Into::into),
                false,
            );
            let max = extreme(conv.row_group_maxes(groups).map_err(Into::into), true);
            cairn_catalog::ColumnStats {
                name,
                null_count,
                min,
                max,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_float_zero_prints_without_its_sign() {
        assert_eq!(stat_text(&ScalarValue::Float64(Some(-0.0))), "0");
        assert_eq!(stat_text(&ScalarValue::Float32(Some(-0.0))), "0");
        assert_eq!(stat_text(&ScalarValue::Float64(Some(-1.5))), "-1.5");
        assert_eq!(stat_text(&ScalarValue::Int64(Some(0))), "0");
    }
}
