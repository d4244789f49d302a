//! Cold segments: immutable, uniquely keyed blobs holding a contiguous run of messages that
//! left the hot log.
//!
//! Encoding (all integers big-endian):
//!
//! ```text
//! "DSSEG1\n"  start_pos:u64  count:u32  { len:u32 bytes }*count  fnv1a64:u64 (over all before it)
//! ```
//!
//! Rotation is crash-safe and idempotent: (1) write the segment object under a key derived
//! from `(incarnation, start, end)`, (2) in one transaction record it in `ds_segments` and drop
//! the hot rows it covers. A crash between the steps leaves an object nobody references yet;
//! the retry writes the very same key with the very same bytes and then commits. Nothing is
//! lost (the hot rows are dropped only together with the index insert) and nothing is
//! duplicated (reads take cold data only below the hot rows' positions, and the index insert
//! is `OR IGNORE`).
//!
//! Object keys (`seg/<incarnation>/<start>-<end>`) are unique within one database; a host that
//! shares one bucket between databases prefixes them with its own namespace.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use crate::error::StorageError;
use crate::hot_log::{self, SegmentEntry, StoredMessage};
use crate::storage::SqlExecutor;

const MAGIC: &[u8; 7] = b"DSSEG1\n";

/// Store of immutable segment objects (local directory natively, R2 in Workers).
/// Synchronous; an async host resolves [`crate::streams::ColdRef`]s itself and uses
/// [`decode`].
pub trait SegmentStore: Send + Sync {
    /// Write `bytes` under `key` durably (atomically replacing any previous object).
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError>;
    /// Read an object.
    fn get(&self, key: &str) -> Result<Bytes, StorageError>;
    /// Delete an object (missing is fine).
    fn delete(&self, key: &str) -> Result<(), StorageError>;
}

/// In-memory store (tests, ephemeral hosts).
#[derive(Default)]
pub struct MemorySegmentStore {
    objects: Mutex<HashMap<String, Bytes>>,
}

impl MemorySegmentStore {
    pub fn len(&self) -> usize {
        self.objects.lock().map(|m| m.len()).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SegmentStore for MemorySegmentStore {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let mut m = self.objects.lock().map_err(|_| StorageError::new("poisoned"))?;
        m.insert(key.to_owned(), Bytes::copy_from_slice(bytes));
        Ok(())
    }
    fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        let m = self.objects.lock().map_err(|_| StorageError::new("poisoned"))?;
        m.get(key).cloned().ok_or_else(|| StorageError::new(format!("segment {key} missing")))
    }
    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let mut m = self.objects.lock().map_err(|_| StorageError::new("poisoned"))?;
        m.remove(key);
        Ok(())
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Encode contiguous messages into a segment.
pub fn encode(messages: &[StoredMessage]) -> Result<Vec<u8>, StorageError> {
    let start = messages.first().map_or(0, |m| m.start);
    let mut expected = start;
    let size: usize = messages.iter().map(|m| m.data.len() + 4).sum();
    let mut out = Vec::with_capacity(size + 27);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&start.to_be_bytes());
    let count = u32::try_from(messages.len()).map_err(|_| StorageError::new("too many messages"))?;
    out.extend_from_slice(&count.to_be_bytes());
    for m in messages {
        if m.start != expected {
            return Err(StorageError::new("segment messages are not contiguous"));
        }
        let len = u32::try_from(m.data.len()).map_err(|_| StorageError::new("message too large"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&m.data);
        expected = m.end();
    }
    let sum = fnv1a64(&out);
    out.extend_from_slice(&sum.to_be_bytes());
    Ok(out)
}

/// Decode and validate a segment.
pub fn decode(bytes: &[u8]) -> Result<Vec<StoredMessage>, StorageError> {
    let bad = |why: &str| StorageError::new(format!("corrupt segment: {why}"));
    let (body, sum) = bytes.split_at_checked(bytes.len().saturating_sub(8)).ok_or_else(|| bad("short"))?;
    let sum: [u8; 8] = sum.try_into().map_err(|_| bad("short"))?;
    if fnv1a64(body) != u64::from_be_bytes(sum) {
        return Err(bad("checksum"));
    }
    let rest = body.strip_prefix(MAGIC.as_slice()).ok_or_else(|| bad("magic"))?;
    let (start, rest) = rest.split_at_checked(8).ok_or_else(|| bad("header"))?;
    let (count, mut rest) = rest.split_at_checked(4).ok_or_else(|| bad("header"))?;
    let mut pos = u64::from_be_bytes(start.try_into().map_err(|_| bad("header"))?);
    let count = u32::from_be_bytes(count.try_into().map_err(|_| bad("header"))?);
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (len, tail) = rest.split_at_checked(4).ok_or_else(|| bad("frame"))?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| bad("frame"))?) as usize;
        let (data, tail) = tail.split_at_checked(len).ok_or_else(|| bad("frame"))?;
        out.push(StoredMessage { start: pos, data: Bytes::copy_from_slice(data) });
        pos += len as u64;
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(out)
}

/// Limits of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLimits {
    pub max_messages: u64,
    pub max_bytes: u64,
}

/// A rotation ready to be carried out: write `bytes` under `entry.object_key`, then call
/// [`commit_rotation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationPlan {
    pub stream_key: String,
    pub incarnation: u64,
    pub entry: SegmentEntry,
    pub bytes: Vec<u8>,
}

/// If the stream's hot tail exceeds the limits, build the segment of its oldest hot messages.
pub fn plan_rotation(
    db: &impl SqlExecutor,
    stream_key: &str,
    limits: SegmentLimits,
) -> Result<Option<RotationPlan>, StorageError> {
    let Some(stream) = hot_log::load_stream(db, stream_key)? else { return Ok(None) };
    let (count, bytes) = hot_log::hot_stats(db, stream_key)?;
    if count <= limits.max_messages && bytes <= limits.max_bytes {
        return Ok(None);
    }
    // Positions stay below 2^53 (exact in every host, JavaScript numbers included).
    let candidates = hot_log::hot_messages(db, stream_key, 0, (1u64 << 53) - 1, limits.max_messages.max(1))?;
    let mut taken = Vec::new();
    let mut size = 0u64;
    for m in candidates {
        if !taken.is_empty() && size + m.data.len() as u64 > limits.max_bytes {
            break;
        }
        size += m.data.len() as u64;
        taken.push(m);
    }
    let (Some(first), Some(last)) = (taken.first(), taken.last()) else { return Ok(None) };
    let entry = SegmentEntry {
        start: first.start,
        end: last.end(),
        message_count: taken.len() as u64,
        size_bytes: size,
        object_key: format!("seg/{:016}/{:016}-{:016}", stream.incarnation, first.start, last.end()),
    };
    Ok(Some(RotationPlan { stream_key: stream_key.to_owned(), incarnation: stream.incarnation, bytes: encode(&taken)?, entry }))
}

/// Step 2 of a rotation, after the object is durably stored. Idempotent; a no-op if the stream
/// was deleted or re-created meanwhile (the object is then garbage, returned for deletion).
pub fn commit_rotation(db: &impl SqlExecutor, plan: &RotationPlan) -> Result<Option<String>, StorageError> {
    db.transaction(|| {
        let current = hot_log::load_stream(db, &plan.stream_key)?;
        if current.map(|s| s.incarnation) != Some(plan.incarnation) {
            return Ok(Some(plan.entry.object_key.clone()));
        }
        hot_log::insert_segment(db, &plan.stream_key, &plan.entry)?;
        hot_log::drop_hot_upto(db, &plan.stream_key, plan.entry.end)?;
        Ok(None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msgs(parts: &[&[u8]], start: u64) -> Vec<StoredMessage> {
        let mut pos = start;
        parts
            .iter()
            .map(|p| {
                let m = StoredMessage { start: pos, data: Bytes::copy_from_slice(p) };
                pos += p.len() as u64;
                m
            })
            .collect()
    }

    #[test]
    fn roundtrip_and_corruption() {
        let m = msgs(&[b"ab", b"", b"cde"], 10);
        let enc = encode(&m).unwrap();
        assert_eq!(decode(&enc).unwrap(), m);
        let mut bad = enc.clone();
        bad[12] ^= 1;
        assert!(decode(&bad).is_err());
        assert!(decode(&enc[..enc.len() - 1]).is_err());
        assert!(decode(b"").is_err());
    }

    #[test]
    fn non_contiguous_is_rejected() {
        let mut m = msgs(&[b"ab", b"cd"], 0);
        m[1].start = 5;
        assert!(encode(&m).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn roundtrip_prop(parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..10), start in 0u64..1000) {
            let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
            let m = msgs(&refs, start);
            prop_assert_eq!(decode(&encode(&m).unwrap()).unwrap(), m);
        }
    }
}
