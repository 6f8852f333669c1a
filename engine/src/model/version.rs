//! Versions, as DESIGN.md defines them (blake3 at the end of each):
//! - code version: the normalized definition;
//! - source data version: the content of the source's files;
//! - input version: code version + partition key + the data versions of
//!   every upstream partition read, in a stable order;
//! - data version: the content of the written output (blake3 over the sum
//!   of column-wise row hashes, see [`crate::model::row_hash`]).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float16Type, Float32Type, Float64Type, Schema,
};
use datafusion::error::Result as DfResult;

use cairn_assets::SqlAsset;

use crate::model::row_hash::RowHasher;

/// Domain separators so that no two kinds of version can collide.
const CODE_DOMAIN: &[u8] = b"cairn/code/v1\0";
const INPUT_DOMAIN: &[u8] = b"cairn/input/v1\0";
/// The data version's format: v1 summed blake3 hashes of each row's Arrow
/// row encoding; v2 sums [`RowHasher`]'s column-wise hashes.
const DATA_DOMAIN: &[u8] = b"cairn/data/v2\0";

/// The code version of a SQL asset: its normalized query (so comments and
/// formatting do not matter) and the configuration that shapes its rows
/// (partitioning and mappings).
pub fn code_version(asset: &SqlAsset) -> String {
    let mut h = blake3::Hasher::new();
    h.update(CODE_DOMAIN);
    write_field(&mut h, asset.normalized_sql.as_bytes());
    let config = asset.output_config();
    if !config.is_empty() {
        write_field(&mut h, config.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// One upstream partition read by a materialization.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UpstreamInput<'a> {
    /// Upstream name.
    pub name: &'a str,
    /// Upstream partition key (`""` when unpartitioned).
    pub partition: &'a str,
    /// Its data version.
    pub data_version: &'a str,
}

impl<'a> From<&'a cairn_catalog::UpstreamVersion> for UpstreamInput<'a> {
    fn from(u: &'a cairn_catalog::UpstreamVersion) -> Self {
        UpstreamInput {
            name: &u.name,
            partition: &u.partition,
            data_version: &u.data_version,
        }
    }
}

/// The input version of one partition of an asset. `inputs` may come in any
/// order; they are sorted here so the version is stable.
pub fn input_version(code_version: &str, partition: &str, inputs: &[UpstreamInput<'_>]) -> String {
    input_hash(code_version, partition, inputs)
        .to_hex()
        .to_string()
}

/// [`input_version`] as a hash, before it is written out as hex (status
/// compares it with the committed one without allocating).
pub fn input_hash(
    code_version: &str,
    partition: &str,
    inputs: &[UpstreamInput<'_>],
) -> blake3::Hash {
    let mut sorted: Vec<&UpstreamInput<'_>> = inputs.iter().collect();
    sorted.sort();
    let mut h = blake3::Hasher::new();
    h.update(INPUT_DOMAIN);
    write_field(&mut h, code_version.as_bytes());
    write_field(&mut h, partition.as_bytes());
    for input in sorted {
        write_field(&mut h, input.name.as_bytes());
        write_field(&mut h, input.partition.as_bytes());
        write_field(&mut h, input.data_version.as_bytes());
    }
    h.finalize()
}

/// Length-prefixed so that ("ab","c") and ("a","bc") hash differently.
fn write_field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// Computes the data version of an output while it streams by.
///
/// A table is a multiset of rows: the version must not depend on the order
/// DataFusion's parallel execution happens to emit rows in, or early cutoff
/// would never fire. Each row gets a 128-bit hash computed column by column
/// ([`RowHasher`]: XXH3-128 of each value, combined per row), the row
/// hashes are summed mod 2^128, and the version is blake3 of a format
/// marker, the schema, the row count and that sum.
///
/// Two different tables of one schema get one version with probability
/// about 2^-128 (the sums of random 128-bit row hashes must meet), and a
/// row repeated k times counts k times (up to 2^128). The format marker
/// (`cairn/data/v2`) is new with this row hash: an output rebuilt after
/// the upgrade gets a version in the new format even when its rows are
/// unchanged, so its downstream rebuilds once; outputs not rebuilt keep
/// their version, which still names their content.
pub struct DataHasher {
    rows_hasher: RowHasher,
    schema_fingerprint: String,
    rows: u64,
    sum: u128,
    /// This batch's row hashes (reused between batches).
    hashes: Vec<u128>,
    /// Each row's [`RowHash`], kept when asked for (to count row changes).
    kept: Option<RowHashes>,
}

/// A row's identity when counting rows added and removed: its [`RowHasher`]
/// hash with float zeros and NaNs made canonical (`-0.0` as `0.0`, every
/// NaN as one NaN), so rows compare as SQL's grouping and set operations
/// compare them. Unless a float column holds a `-0.0` or a NaN, that is
/// the very hash the data version sums, which sees exact bits.
pub type RowHash = u128;

/// Row hashes kept while batches stream by, up to a bound on memory
/// (16 bytes a row); past it they are dropped and the caller falls back
/// to a method that does not hold them.
#[derive(Debug)]
pub struct RowHashes {
    hashes: Vec<RowHash>,
    limit: usize,
    overflowed: bool,
}

impl RowHashes {
    /// Keeps at most `limit` hashes.
    pub fn new(limit: usize) -> Self {
        RowHashes {
            hashes: Vec::new(),
            limit,
            overflowed: false,
        }
    }

    fn extend(&mut self, hashes: &[RowHash]) {
        if self.overflowed {
            return;
        }
        if self.hashes.len() + hashes.len() > self.limit {
            self.overflowed = true;
            self.hashes = Vec::new();
            return;
        }
        self.hashes.extend_from_slice(hashes);
    }

    /// Every row's hash, or `None` when there were more than the limit.
    pub fn into_hashes(self) -> Option<Vec<RowHash>> {
        (!self.overflowed).then_some(self.hashes)
    }
}

impl DataHasher {
    /// A hasher for batches of `schema`.
    pub fn new(schema: &Schema) -> DfResult<Self> {
        let types: Vec<DataType> = schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(DataHasher {
            rows_hasher: RowHasher::new(&types)?,
            schema_fingerprint: schema_fingerprint(schema),
            rows: 0,
            sum: 0,
            hashes: Vec::new(),
            kept: None,
        })
    }

    /// Also keeps each row's [`RowHash`] (at most `limit` of them), for
    /// [`DataHasher::take_row_hashes`].
    pub fn keeping_row_hashes(mut self, limit: usize) -> Self {
        self.kept = Some(RowHashes::new(limit));
        self
    }

    /// The kept row hashes: `None` when not asked for or past the limit.
    pub fn take_row_hashes(&mut self) -> Option<Vec<RowHash>> {
        self.kept.take().and_then(RowHashes::into_hashes)
    }

    /// Adds a batch.
    pub fn update(&mut self, batch: &RecordBatch) -> DfResult<()> {
        self.rows_hasher
            .hash_rows(batch.columns(), &mut self.hashes)?;
        self.sum = self
            .hashes
            .iter()
            .fold(self.sum, |sum, h| sum.wrapping_add(*h));
        if let Some(kept) = &mut self.kept {
            // Row identities differ from the exact hashes only where a
            // float column holds a -0.0 or a NaN (rare: checked per batch).
            match canonical_floats(batch.columns()) {
                Some(columns) => {
                    let mut canonical = Vec::new();
                    self.rows_hasher.hash_rows(&columns, &mut canonical)?;
                    kept.extend(&canonical);
                }
                None => kept.extend(&self.hashes),
            }
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// The data version.
    pub fn finish(&self) -> String {
        let mut h = blake3::Hasher::new();
        h.update(DATA_DOMAIN);
        write_field(&mut h, self.schema_fingerprint.as_bytes());
        h.update(&self.rows.to_le_bytes());
        h.update(&self.sum.to_le_bytes());
        h.finalize().to_hex().to_string()
    }
}

/// The columns with every float `-0.0` made `0.0` and every NaN the
/// canonical NaN, or `None` when no top-level float column holds either
/// (floats nested in lists or structs keep their bits).
fn canonical_floats(columns: &[ArrayRef]) -> Option<Vec<ArrayRef>> {
    fn odd<T: num_traits::Float>(v: T) -> bool {
        v.is_nan() || (v.is_zero() && v.is_sign_negative())
    }
    fn canonical<T: num_traits::Float>(v: T) -> T {
        if v.is_nan() {
            T::nan()
        } else if v.is_zero() {
            T::zero()
        } else {
            v
        }
    }
    fn fix<P: ArrowPrimitiveType>(a: &ArrayRef) -> Option<ArrayRef>
    where
        P::Native: num_traits::Float,
    {
        let a = a.as_primitive_opt::<P>()?;
        if !a.values().iter().any(|v| odd(*v)) {
            return None;
        }
        Some(Arc::new(a.unary::<_, P>(canonical)))
    }
    let fixed: Vec<Option<ArrayRef>> = columns
        .iter()
        .map(|c| match c.data_type() {
            DataType::Float16 => fix::<Float16Type>(c),
            DataType::Float32 => fix::<Float32Type>(c),
            DataType::Float64 => fix::<Float64Type>(c),
            _ => None,
        })
        .collect();
    if fixed.iter().all(Option::is_none) {
        return None;
    }
    Some(
        fixed
            .into_iter()
            .zip(columns)
            .map(|(f, c)| f.unwrap_or_else(|| Arc::clone(c)))
            .collect(),
    )
}

/// Column names and types (not nullability, which DataFusion may infer
/// differently for the same data).
fn schema_fingerprint(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}:{}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(",")
}

/// A short, readable prefix of a version for display.
pub fn short(version: &str) -> &str {
    version.get(..12).unwrap_or(version)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};

    use super::*;

    fn batch(ids: &[i64], names: &[&str]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names.to_vec())),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn version(batches: &[RecordBatch]) -> String {
        let mut h = DataHasher::new(&batches[0].schema()).unwrap_or_else(|e| panic!("{e}"));
        for b in batches {
            h.update(b).unwrap_or_else(|e| panic!("{e}"));
        }
        h.finish()
    }

    #[test]
    fn data_version_ignores_row_order_and_batching() {
        let a = version(&[batch(&[1, 2, 3], &["a", "b", "c"])]);
        let b = version(&[batch(&[3], &["c"]), batch(&[2, 1], &["b", "a"])]);
        assert_eq!(a, b);
    }

    #[test]
    fn data_version_sees_values_and_duplicates() {
        let a = version(&[batch(&[1, 2], &["a", "b"])]);
        assert_ne!(a, version(&[batch(&[1, 2], &["a", "x"])]));
        assert_ne!(a, version(&[batch(&[1, 2, 2], &["a", "b", "b"])]));
    }

    fn one_column(field: Field, array: ArrayRef) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![array])
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The kept row hashes of a one-column batch.
    fn row_hashes(field: Field, array: ArrayRef) -> Option<Vec<RowHash>> {
        let b = one_column(field, array);
        let mut h = DataHasher::new(&b.schema())
            .unwrap_or_else(|e| panic!("{e}"))
            .keeping_row_hashes(10);
        h.update(&b).unwrap_or_else(|e| panic!("{e}"));
        h.take_row_hashes()
    }

    #[test]
    fn data_version_tells_nulls_from_values_and_sees_float_bits() {
        use datafusion::arrow::array::Float64Array;
        let strings = |xs: Vec<Option<&str>>| {
            one_column(
                Field::new("s", DataType::Utf8, true),
                Arc::new(StringArray::from(xs)),
            )
        };
        let null = version(&[strings(vec![None])]);
        assert_ne!(null, version(&[strings(vec![Some("")])]));
        assert_ne!(null, version(&[strings(vec![Some("null")])]));
        assert_ne!(null, version(&[strings(vec![None, None])]));
        let ints = |xs: Vec<Option<i64>>| {
            one_column(
                Field::new("i", DataType::Int64, true),
                Arc::new(Int64Array::from(xs)),
            )
        };
        assert_ne!(
            version(&[ints(vec![None])]),
            version(&[ints(vec![Some(0)])])
        );
        let floats = |xs: &[f64]| {
            one_column(
                Field::new("x", DataType::Float64, false),
                Arc::new(Float64Array::from(xs.to_vec())),
            )
        };
        assert_ne!(version(&[floats(&[0.0])]), version(&[floats(&[-0.0])]));
        let quiet = f64::from_bits(0x7ff8_0000_0000_0000);
        let other_nan = f64::from_bits(0x7ff8_0000_0000_0001);
        assert_ne!(
            version(&[floats(&[quiet])]),
            version(&[floats(&[other_nan])])
        );
    }

    #[test]
    fn data_version_sees_which_values_share_a_row_and_a_column() {
        // The same values, paired differently across rows.
        let a = version(&[batch(&[1, 2], &["a", "b"])]);
        assert_ne!(a, version(&[batch(&[1, 2], &["b", "a"])]));
        // The same values, in swapped columns of one type.
        let pairs = |x: &[i64], y: &[i64]| {
            let schema = Arc::new(Schema::new(vec![
                Field::new("x", DataType::Int64, false),
                Field::new("y", DataType::Int64, false),
            ]));
            RecordBatch::try_new(
                schema,
                vec![
                    Arc::new(Int64Array::from(x.to_vec())),
                    Arc::new(Int64Array::from(y.to_vec())),
                ],
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_ne!(version(&[pairs(&[1], &[2])]), version(&[pairs(&[2], &[1])]));
        // Duplicates count: {r, r} is not {r} nor {r, r, r}.
        let twice = version(&[pairs(&[1, 1], &[2, 2])]);
        assert_ne!(twice, version(&[pairs(&[1], &[2])]));
        assert_ne!(twice, version(&[pairs(&[1, 1, 1], &[2, 2, 2])]));
    }

    #[test]
    fn dictionary_values_hash_as_the_values_they_stand_for() {
        use datafusion::arrow::array::DictionaryArray;
        use datafusion::arrow::datatypes::Int32Type;
        let dictionary: DictionaryArray<Int32Type> = vec![Some("b"), None, Some("a"), Some("b")]
            .into_iter()
            .collect();
        let dict_type = dictionary.data_type().clone();
        let plain = StringArray::from(vec![Some("b"), None, Some("a"), Some("b")]);
        assert_eq!(
            row_hashes(Field::new("s", dict_type, true), Arc::new(dictionary)),
            row_hashes(Field::new("s", DataType::Utf8, true), Arc::new(plain)),
        );
    }

    /// A dictionary column with no values (no rows, or only nulls) hashes
    /// like the plain column it stands for rather than failing.
    #[test]
    fn dictionaries_without_values_hash_as_the_plain_column() {
        use datafusion::arrow::array::{DictionaryArray, Int32Array};
        use datafusion::arrow::datatypes::Int32Type;
        let dictionary = |keys: Vec<Option<i32>>| {
            let array = DictionaryArray::<Int32Type>::try_new(
                Int32Array::from(keys),
                Arc::new(StringArray::from(Vec::<&str>::new())),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            (
                Field::new("s", array.data_type().clone(), true),
                Arc::new(array) as ArrayRef,
            )
        };
        let (field, array) = dictionary(vec![]);
        assert_eq!(row_hashes(field, array), Some(vec![]));
        let (field, array) = dictionary(vec![None, None]);
        assert_eq!(
            row_hashes(field, array),
            row_hashes(
                Field::new("s", DataType::Utf8, true),
                Arc::new(StringArray::from(vec![None::<&str>, None])),
            )
        );
    }

    #[test]
    fn nested_columns_are_hashed_from_their_row_encoding() {
        use datafusion::arrow::array::ListArray;
        use datafusion::arrow::datatypes::Int32Type;
        let lists = |xs: Vec<Option<Vec<Option<i32>>>>| {
            let array = ListArray::from_iter_primitive::<Int32Type, _, _>(xs);
            one_column(
                Field::new("l", array.data_type().clone(), true),
                Arc::new(array),
            )
        };
        let a = version(&[lists(vec![Some(vec![Some(1), Some(2)]), None])]);
        assert_eq!(
            a,
            version(&[lists(vec![None, Some(vec![Some(1), Some(2)])])])
        );
        assert_ne!(
            a,
            version(&[lists(vec![Some(vec![Some(2), Some(1)]), None])])
        );
        assert_ne!(
            a,
            version(&[lists(vec![Some(vec![Some(1), Some(2)]), Some(vec![])])])
        );
    }

    /// Data versions are stored and compared across runs, machines and
    /// releases: the format must not drift. A change here is a new format
    /// (a new `DATA_DOMAIN`), never an edit of this value.
    #[test]
    fn data_version_format_is_pinned() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("x", DataType::Float64, true),
            Field::new("day", DataType::Date32, true),
            Field::new("ok", DataType::Boolean, true),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None, Some(-3)])),
                Arc::new(StringArray::from(vec![Some("a"), Some(""), None])),
                Arc::new(datafusion::arrow::array::Float64Array::from(vec![
                    Some(0.5),
                    Some(-0.0),
                    None,
                ])),
                Arc::new(datafusion::arrow::array::Date32Array::from(vec![
                    Some(20_000),
                    None,
                    Some(0),
                ])),
                Arc::new(datafusion::arrow::array::BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                ])),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        expect_test::expect!["1a4788de548c82f92b8c514811753252abd52e73914e04b4c11caea80235bec2"]
            .assert_eq(&version(&[b]));
    }

    #[test]
    fn row_hashes_see_zeros_and_nans_as_sql_does_but_the_data_version_sees_bits() {
        use datafusion::arrow::array::Float64Array;
        let floats = |xs: &[f64]| {
            let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
            RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(xs.to_vec()))])
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let hashed = |b: &RecordBatch| {
            let mut h = DataHasher::new(&b.schema())
                .unwrap_or_else(|e| panic!("{e}"))
                .keeping_row_hashes(10);
            h.update(b).unwrap_or_else(|e| panic!("{e}"));
            (h.finish(), h.take_row_hashes())
        };
        let (v1, r1) = hashed(&floats(&[0.0, f64::NAN, 2.5]));
        let (v2, r2) = hashed(&floats(&[-0.0, -f64::NAN, 2.5]));
        assert_ne!(v1, v2);
        assert_eq!(r1, r2);
        // Without odd floats the kept hashes are the data version's own.
        let (_, r3) = hashed(&floats(&[2.5]));
        assert_eq!(r3.as_ref().map(|r| r[0]), r1.as_ref().map(|r| r[2]));
        // Past the limit nothing is kept.
        let mut h = DataHasher::new(&floats(&[1.0]).schema())
            .unwrap_or_else(|e| panic!("{e}"))
            .keeping_row_hashes(2);
        h.update(&floats(&[1.0, 2.0, 3.0]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.take_row_hashes(), None);
    }

    #[test]
    fn input_version_is_order_independent_and_sensitive() {
        let x = UpstreamInput {
            name: "a",
            partition: "",
            data_version: "1",
        };
        let y = UpstreamInput {
            name: "b",
            partition: "",
            data_version: "2",
        };
        let v1 = input_version("code", "", &[x.clone(), y.clone()]);
        assert_eq!(v1, input_version("code", "", &[y.clone(), x.clone()]));
        assert_ne!(v1, input_version("code2", "", &[x.clone(), y.clone()]));
        let y2 = UpstreamInput {
            data_version: "3",
            ..y
        };
        assert_ne!(v1, input_version("code", "", &[x, y2]));
    }
}
