//! Redis Cluster's key space: which of the 16384 hash slots a key lives in, and which master
//! serves each slot (`CLUSTER SLOTS`). Pure functions, tested against the cluster spec's
//! examples here and against a real cluster's `CLUSTER KEYSLOT` in the integration tests.

use std::fmt;

use redis::Value;

/// Hash slots in a Redis Cluster.
pub(crate) const SLOT_COUNT: u16 = 16384;

/// CRC-16/XMODEM (polynomial 0x1021, initial value 0), as the cluster specification defines
/// the key hash; a byte-wise table, computed at compile time.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = (byte as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
};

fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &byte| {
        (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ byte)]
    })
}

/// The slot of `key`: the CRC-16 of its hash tag (the bytes between the first `{` and the
/// first `}` after it, when there are any) or of the whole key, modulo 16384.
///
/// The Python original's keys are `ai:memory:{session_id}` by plain interpolation, so a session
/// id holding `{...}` is a hash tag for Redis too: both implementations name the same key, and
/// so the same slot.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key).unwrap_or(key)) % SLOT_COUNT
}

fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&byte| byte == b'{')?;
    let rest = &key[open + 1..];
    let close = rest.iter().position(|&byte| byte == b'}')?;
    (close > 0).then(|| &rest[..close])
}

/// A node's client address, as the cluster announces it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NodeAddress {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Client port (the TLS port, to a TLS client of a `tls-cluster yes` cluster).
    pub port: u16,
}

impl NodeAddress {
    /// `host:port` as MOVED and ASK replies write it (`[v6]:port` accepted too).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (host, port) = text.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return None;
        }
        Some(Self {
            host: host.to_string(),
            port: port.parse().ok()?,
        })
    }
}

impl fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// One range of slots, the master serving it and its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlotRange {
    /// First slot, inclusive.
    pub start: u16,
    /// Last slot, inclusive.
    pub end: u16,
    /// The master.
    pub master: NodeAddress,
    /// Its replicas (never written to; asked for the topology when the masters do not answer).
    pub replicas: Vec<NodeAddress>,
}

/// The ranges a `CLUSTER SLOTS` reply names, from the node at `asked`. A master announced
/// with an empty host is the node that was asked (Redis writes that when it does not know its
/// own address); one announced as `?` has no known address and its range is left out (calls
/// for those slots then fail as unserved until the cluster knows better).
pub(crate) fn parse_cluster_slots(
    reply: &Value,
    asked: &NodeAddress,
) -> Result<Vec<SlotRange>, String> {
    let Value::Array(ranges) = reply else {
        return Err(format!("CLUSTER SLOTS answered {reply:?}"));
    };
    let mut parsed = Vec::with_capacity(ranges.len());
    for range in ranges {
        let Value::Array(fields) = range else {
            return Err(format!("CLUSTER SLOTS range {range:?}"));
        };
        let slot = |index: usize| -> Result<u16, String> {
            match fields.get(index) {
                Some(Value::Int(slot)) => u16::try_from(*slot)
                    .ok()
                    .filter(|slot| *slot < SLOT_COUNT)
                    .ok_or_else(|| format!("CLUSTER SLOTS: slot {slot} out of range")),
                other => Err(format!("CLUSTER SLOTS: slot {other:?}")),
            }
        };
        let (start, end) = (slot(0)?, slot(1)?);
        if start > end {
            return Err(format!("CLUSTER SLOTS: range {start}-{end}"));
        }
        let master = match fields.get(2) {
            Some(master) => node_address(master, asked)?,
            None => return Err(format!("CLUSTER SLOTS: range {start}-{end} has no master")),
        };
        let Some(master) = master else {
            continue;
        };
        let mut replicas = Vec::new();
        for replica in &fields[3..] {
            replicas.extend(node_address(replica, asked)?);
        }
        parsed.push(SlotRange {
            start,
            end,
            master,
            replicas,
        });
    }
    Ok(parsed)
}

/// A node of a `CLUSTER SLOTS` range (`[host, port, id, ...]`); `None` for a node without a
/// known address (`?`).
fn node_address(node: &Value, asked: &NodeAddress) -> Result<Option<NodeAddress>, String> {
    let Value::Array(fields) = node else {
        return Err(format!("CLUSTER SLOTS: node {node:?}"));
    };
    let host: String = match fields.first() {
        Some(value) => redis::from_redis_value_ref(value)
            .map_err(|error| format!("CLUSTER SLOTS: node host: {error}"))?,
        None => return Err("CLUSTER SLOTS: empty node".to_string()),
    };
    let port = match fields.get(1) {
        Some(Value::Int(port)) => {
            u16::try_from(*port).map_err(|_| format!("CLUSTER SLOTS: node port {port}"))?
        }
        other => return Err(format!("CLUSTER SLOTS: node port {other:?}")),
    };
    let host = match host.as_str() {
        "?" => return Ok(None),
        "" => asked.host.clone(),
        _ => host,
    };
    Ok(Some(NodeAddress { host, port }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_hash_is_crc16_xmodem_as_the_cluster_spec_gives_it() {
        // The check value in the Redis Cluster specification.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn a_hash_tag_is_the_first_braced_non_empty_part_and_only_that() {
        // The specification's examples.
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // `{}` is no tag: the whole key is hashed.
        assert_eq!(hash_tag(b"foo{}{bar}"), None);
        assert_eq!(hash_tag(b"foo{{bar}}zap"), Some(&b"{bar"[..]));
        assert_eq!(hash_tag(b"foo{bar}{zap}"), Some(&b"bar"[..]));
        assert_eq!(hash_tag(b"ai:memory:no-tag"), None);
        assert_eq!(hash_tag(b"ai:memory:{open"), None);
    }

    #[test]
    fn every_key_lands_in_the_slot_a_real_cluster_node_computes() {
        // Keys of random bytes, many with braces in odd places (hash tags, empty tags, tags
        // that never close), compared with CLUSTER KEYSLOT on a cluster-enabled redis-server.
        let server = agent_memory_tests::RedisServer::start_cluster_node(&[]);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"{{}}ab:\xff\x00";
        let keys: Vec<Vec<u8>> = (0..3000)
            .map(|_| {
                let length = usize::try_from(random() % 24).unwrap();
                (0..length)
                    .map(|_| {
                        let pick = random();
                        if pick % 3 == 0 {
                            alphabet[usize::try_from(pick).unwrap() % alphabet.len()]
                        } else {
                            u8::try_from(pick % 256).unwrap()
                        }
                    })
                    .collect()
            })
            .collect();
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.cmd("CLUSTER").arg("KEYSLOT").arg(key);
        }
        let expected: Vec<u16> = pipe.query(&mut server.connection()).unwrap();
        for (key, expected) in keys.iter().zip(expected) {
            assert_eq!(key_slot(key), expected, "{key:?}");
        }
    }

    #[test]
    fn redirect_addresses_parse_with_and_without_brackets() {
        let parsed = NodeAddress::parse("127.0.0.1:7001").unwrap();
        assert_eq!((parsed.host.as_str(), parsed.port), ("127.0.0.1", 7001));
        let v6 = NodeAddress::parse("[::1]:7002").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 7002));
        assert_eq!(v6.to_string(), "[::1]:7002");
        for bad in ["", ":7000", "host", "host:port", "host:70000"] {
            assert_eq!(NodeAddress::parse(bad), None, "{bad}");
        }
    }

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    #[test]
    fn cluster_slots_names_each_range_master_and_the_empty_host_is_the_node_asked() {
        let asked = NodeAddress::parse("10.0.0.9:7000").unwrap();
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7000),
                node("127.0.0.1", 7003),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("", 7001)]),
            Value::Array(vec![Value::Int(100), Value::Int(100), node("?", 7009)]),
        ]);
        let ranges = parse_cluster_slots(&reply, &asked).unwrap();
        assert_eq!(ranges.len(), 2);
        assert_eq!((ranges[0].start, ranges[0].end), (0, 5460));
        assert_eq!(ranges[0].master.to_string(), "127.0.0.1:7000");
        assert_eq!(
            ranges[0].replicas,
            [NodeAddress::parse("127.0.0.1:7003").unwrap()]
        );
        assert_eq!(ranges[1].master.to_string(), "10.0.0.9:7001");
        assert!(ranges[1].replicas.is_empty());
    }

    #[test]
    fn a_malformed_cluster_slots_reply_is_an_error_not_a_panic() {
        let asked = NodeAddress::parse("h:1").unwrap();
        for reply in [
            Value::Nil,
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![Value::Int(5), Value::Int(1)])]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(0),
                Value::Int(16384),
                node("h", 1),
            ])]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(0),
                Value::Int(1),
                node("h", 70000),
            ])]),
            Value::Array(vec![Value::Array(vec![
                Value::Int(0),
                Value::Int(1),
                Value::Array(vec![]),
            ])]),
        ] {
            assert!(parse_cluster_slots(&reply, &asked).is_err(), "{reply:?}");
        }
    }
}
