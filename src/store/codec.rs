//! How a run record is stored: its JSON, LZ4-compressed once it carries a
//! result.
//!
//! Why: a finished hello_quantum_sim record is 7.3 KB of JSON, and sled's
//! cost is in the bytes it writes, as it rewrites whole nodes: written
//! uncompressed, a drain put about 30 KB per run on disk and lost a fifth
//! of its rate. LZ4 takes such a record to about 2.7 KB in microseconds. Queued
//! records (about 600 bytes) stay plain JSON: a submit's latency gains
//! nothing from compressing them.
//!
//! Format: plain JSON always begins with `{`; a compressed record begins
//! with [`LZ4`], then the JSON's length (u32, little endian), then one LZ4
//! block. Records written before compression existed read as they are.
//! A value of one byte is no record but a finish's stub (see [`stub`]).

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::run::RunStatus;

/// First byte of a compressed record: never the first byte of JSON text.
const LZ4: u8 = 1;

/// Records at least this long are compressed.
const COMPRESS_FROM: usize = 1024;

/// No record is larger (a result document is tens of kilobytes); a
/// corrupted length must not make a read allocate gigabytes.
const MAX_RECORD: usize = 16 << 20;

/// What a finish leaves in the main store's `runs` tree while the run's
/// record is in the archive (see archive.rs): its final status, one byte.
/// The maintenance loop drops it.
pub(super) fn stub(status: RunStatus) -> [u8; 1] {
    [status as u8]
}

/// The status a stub holds; None for a record.
pub(super) fn stub_status(value: &[u8]) -> Option<RunStatus> {
    match value {
        [b] => RunStatus::ALL
            .get(usize::from(*b))
            .copied()
            .filter(|s| s.is_finished()),
        _ => None,
    }
}

/// The stored bytes of `record`.
pub(super) fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // Serializing plain data structs cannot fail.
    let json = serde_json::to_vec(record).unwrap_or_default();
    if json.len() < COMPRESS_FROM {
        return json;
    }
    // Compressed in place behind the header, not into a vector of its own.
    let mut out = vec![0; 5 + lz4_flex::block::get_maximum_output_size(json.len())];
    out[0] = LZ4;
    out[1..5].copy_from_slice(&(json.len() as u32).to_le_bytes());
    match lz4_flex::block::compress_into(&json, &mut out[5..]) {
        Ok(n) => {
            out.truncate(5 + n);
            out
        }
        // Cannot happen with the maximum output size; stored plain then.
        Err(_) => json,
    }
}

/// Reads stored bytes as a `T` (the whole record, or the fields a caller
/// needs). The error says what is wrong, for the quarantine log.
pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&LZ4, rest)) => {
            let (len, block) = rest
                .split_first_chunk::<4>()
                .ok_or("compressed record too short")?;
            let len = u32::from_le_bytes(*len) as usize;
            if len > MAX_RECORD {
                return Err(format!("compressed record claims {len} bytes"));
            }
            let json = lz4_flex::block::decompress(block, len).map_err(|e| e.to_string())?;
            serde_json::from_slice(&json).map_err(|e| e.to_string())
        }
        _ => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn big() -> Value {
        json!({"status": "succeeded", "result": {"samples": vec![0.5; 400]}})
    }

    #[test]
    fn small_records_stay_plain_json_and_large_ones_shrink() {
        let small = json!({"status": "queued"});
        assert_eq!(encode(&small), serde_json::to_vec(&small).unwrap());
        let stored = encode(&big());
        let json_len = serde_json::to_vec(&big()).unwrap().len();
        assert_eq!(stored[0], LZ4);
        assert!(
            stored.len() * 4 < json_len,
            "{} of {json_len} bytes",
            stored.len()
        );
        assert_eq!(decode::<Value>(&stored).unwrap(), big());
        assert_eq!(decode::<Value>(&encode(&small)).unwrap(), small);
    }

    #[test]
    fn records_stored_before_compression_still_read() {
        let plain = serde_json::to_vec(&big()).unwrap();
        assert_eq!(decode::<Value>(&plain).unwrap(), big());
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let stored = encode(&big());
        let mut huge = stored.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut flipped = stored.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        for bad in [
            &[][..],
            &[LZ4][..],
            &stored[..3],
            &stored[..stored.len() - 7],
            &huge,
            &flipped,
            b"{not json",
        ] {
            assert!(decode::<Value>(bad).is_err(), "{bad:?}");
        }
    }
}
