//! [`Committed`]: the committed version of one unit as status and planning
//! hold it. A snapshot holds one per committed partition (hundreds of
//! thousands), so it is compact: version digests inline, run and code ids
//! shared between the partitions that have the same.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use cairn_catalog::{CurrentVersion, CurrentVersionRef, MaterializationId, RunId};

use crate::model::units::SharedTexts;

/// Inline capacity of [`VersionText`]: a blake3 digest in hex.
const INLINE: usize = 64;

/// A version as text (a hex digest), held without a heap allocation when
/// it fits in 64 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct VersionText(Repr);

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl VersionText {
    /// Holds `text`.
    pub fn new(text: &str) -> VersionText {
        let len = text.len();
        if len <= INLINE
            && let Ok(short) = u8::try_from(len)
        {
            let mut bytes = [0u8; INLINE];
            bytes[..len].copy_from_slice(text.as_bytes());
            VersionText(Repr::Inline { len: short, bytes })
        } else {
            VersionText(Repr::Heap(text.into()))
        }
    }

    /// The text's bytes (no UTF-8 check: comparisons need none).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(text) => text.as_bytes(),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always whole UTF-8: copied from a `&str` up to its length.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Heap(text) => text,
        }
    }
}

impl fmt::Display for VersionText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for VersionText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for VersionText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for VersionText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// The committed version of one unit (its asset and key are where it is
/// held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Committed {
    /// The materialization.
    pub id: MaterializationId,
    /// The run that produced it.
    #[serde(serialize_with = "shared_text")]
    pub run_id: Arc<str>,
    /// Code version.
    #[serde(serialize_with = "shared_text")]
    pub code_version: Arc<str>,
    /// Input version.
    pub input_version: VersionText,
    /// Data version.
    pub data_version: VersionText,
    /// Rows.
    pub row_count: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Wall time in milliseconds.
    pub wall_ms: u64,
    /// Commit time.
    pub committed_at: DateTime<Utc>,
}

fn shared_text<S: Serializer>(text: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(text)
}

impl Committed {
    /// The catalog's summary of this version of `asset` [`partition`].
    pub fn to_current_version(&self, asset: &str, partition: &str) -> CurrentVersion {
        CurrentVersion {
            id: self.id,
            run_id: RunId(self.run_id.to_string()),
            asset: asset.to_owned(),
            partition: partition.to_owned(),
            code_version: self.code_version.to_string(),
            input_version: self.input_version.as_str().to_owned(),
            data_version: self.data_version.as_str().to_owned(),
            row_count: self.row_count,
            bytes_written: self.bytes_written,
            wall_ms: self.wall_ms,
            committed_at: self.committed_at,
        }
    }
}

/// Builds [`Committed`]s from catalog rows, sharing one copy of each run id
/// and code version.
#[derive(Default)]
pub struct CommittedReader {
    texts: SharedTexts,
}

impl CommittedReader {
    /// The compact form of one catalog row.
    pub fn read(&mut self, c: &CurrentVersionRef<'_>) -> Committed {
        Committed {
            id: c.id,
            run_id: self.texts.get(c.run_id),
            code_version: self.texts.get(c.code_version),
            input_version: VersionText::new(c.input_version),
            data_version: VersionText::new(c.data_version),
            row_count: c.row_count,
            bytes_written: c.bytes_written,
            wall_ms: c.wall_ms,
            committed_at: c.committed_at,
        }
    }

    /// The shared copy of a partition key.
    pub fn key(&mut self, key: &str) -> Arc<str> {
        self.texts.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_text_round_trips_short_digest_and_long_text() {
        let digest = blake3::hash(b"x").to_hex();
        for text in ["", "d1", digest.as_str(), &"é".repeat(40)] {
            let v = VersionText::new(text);
            assert_eq!(v.as_str(), text);
            assert!(v == *text);
            assert_eq!(
                serde_json::to_string(&v).unwrap_or_default(),
                serde_json::to_string(text).unwrap_or_default()
            );
        }
    }

    #[test]
    fn reader_shares_run_ids_and_code_versions() {
        let row = |run: &'static str, code: &'static str| CurrentVersionRef {
            id: MaterializationId(1),
            run_id: run,
            asset: "a",
            partition: "2024-01-01",
            code_version: code,
            input_version: "i",
            data_version: "d",
            row_count: 3,
            bytes_written: 10,
            wall_ms: 1,
            committed_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let mut reader = CommittedReader::default();
        let a = reader.read(&row("r1", "c1"));
        let b = reader.read(&row("r1", "c1"));
        let c = reader.read(&row("r2", "c1"));
        assert!(Arc::ptr_eq(&a.run_id, &b.run_id));
        assert!(Arc::ptr_eq(&a.code_version, &c.code_version));
        assert!(!Arc::ptr_eq(&a.run_id, &c.run_id));
        let back = a.to_current_version("a", "2024-01-01");
        assert_eq!(back.run_id, RunId("r1".to_owned()));
        assert_eq!(back.input_version, "i");
        assert_eq!(back.row_count, 3);
    }
}
