//! How one list is stored in the embedded store's file: a versioned, checksummed encoding of
//! its entries and expiry. A value that does not decode is damaged, and spoils only its key.

use crate::store::list::StoredList;

/// Value encoding of the foundation: no checksum. Still read.
const FORMAT_V1: u8 = 1;

/// Value encoding written now: a CRC-32 of the rest, so that a value damaged on disk is
/// reported as damaged instead of read back as different messages (redb checks its own pages
/// only when it repairs a file).
const FORMAT_V2: u8 = 2;

/// `[2][crc32 of what follows: u32 LE][expires_at_ms: u64 LE, 0 = never][count: u32 LE]`
/// `([len: u32 LE][bytes])*`
pub(super) fn encode(list: &StoredList) -> Vec<u8> {
    let size = 17
        + list
            .entries
            .iter()
            .map(|entry| 4 + entry.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.push(FORMAT_V2);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&list.expires_at_ms.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&len_u32(list.entries.len()).to_le_bytes());
    for entry in &list.entries {
        out.extend_from_slice(&len_u32(entry.len()).to_le_bytes());
        out.extend_from_slice(entry);
    }
    let checksum = crc32(&out[5..]);
    out[1..5].copy_from_slice(&checksum.to_le_bytes());
    out
}

/// CRC-32 (IEEE 802.3, the one of zlib and PNG), bit by bit: values are small and this runs
/// once per value read or written.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

fn len_u32(len: usize) -> u32 {
    // Entries are capped far below 4 GiB by the host's value limit.
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Decode a stored value, or say what is wrong with it.
pub(super) fn decode(bytes: &[u8]) -> Result<StoredList, String> {
    let (&version, mut reader) = bytes.split_first().ok_or("empty")?;
    match version {
        FORMAT_V1 => {}
        FORMAT_V2 => {
            let (stored, rest) = reader.split_at_checked(4).ok_or("truncated")?;
            let stored = u32::from_le_bytes(stored.try_into().map_err(|_| "checksum")?);
            if crc32(rest) != stored {
                return Err("its checksum does not match".to_string());
            }
            reader = rest;
        }
        version => return Err(format!("unknown format version {version}")),
    }
    let mut take = |n: usize| -> Result<&[u8], String> {
        let (head, rest) = reader.split_at_checked(n).ok_or("truncated")?;
        reader = rest;
        Ok(head)
    };
    let expires_at_ms = u64::from_le_bytes(take(8)?.try_into().map_err(|_| "expiry")?);
    let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "count")?);
    let mut entries = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        let len = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "length")?);
        entries.push(take(len as usize)?.to_vec());
    }
    if !reader.is_empty() {
        return Err("trailing bytes".to_string());
    }
    Ok(StoredList {
        entries,
        expires_at_ms: (expires_at_ms != 0).then_some(expires_at_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_encoding_round_trips() {
        let list = StoredList {
            entries: vec![b"a".to_vec(), Vec::new(), vec![0xff; 300]],
            expires_at_ms: Some(123),
        };
        assert_eq!(decode(&encode(&list)), Ok(list));
    }

    #[test]
    fn the_checksum_is_crc32_and_catches_a_flipped_bit_anywhere() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        let bytes = encode(&StoredList {
            entries: vec![br#"{"role": "user", "content": "s1 m0"}"#.to_vec()],
            expires_at_ms: Some(99),
        });
        for at in 1..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x01;
            assert!(decode(&flipped).is_err(), "flip at {at} went unnoticed");
        }
    }

    #[test]
    fn values_of_the_first_format_are_still_read() {
        let mut v1 = vec![FORMAT_V1];
        v1.extend_from_slice(&0u64.to_le_bytes());
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&2u32.to_le_bytes());
        v1.extend_from_slice(b"{}");
        assert_eq!(
            decode(&v1),
            Ok(StoredList {
                entries: vec![b"{}".to_vec()],
                expires_at_ms: None
            })
        );
    }

    #[test]
    fn a_truncated_or_padded_value_is_reported_as_damaged_not_a_panic() {
        let bytes = encode(&StoredList {
            entries: vec![b"abc".to_vec()],
            expires_at_ms: None,
        });
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(decode(&padded).is_err());
        let mut huge_count = bytes;
        huge_count[13..17].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge_count).is_err());
    }
}
