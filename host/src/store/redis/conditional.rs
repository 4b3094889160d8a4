//! Transactions with an expectation ([`ListOp::Expect`]) on Redis.
//!
//! MULTI/EXEC cannot make a transaction depend on what the list holds, and `WATCH` needs a
//! connection of its own (the store shares one multiplexed connection among every call). A Lua
//! script runs as atomically as MULTI/EXEC, on one key (so on one Cluster slot too): it compares
//! the list with what the policy read (its length, and the SHA-1 of its entries, so the entries
//! themselves are not sent back), then applies the operations, or nothing.

use redis::Value;
use sha1::{Digest, Sha1};

use crate::store::{Applied, ListOp, Range, StoreError};

/// The script. `KEYS[1]` is the list; `ARGV[1]` the expected length, `ARGV[2]` the expected
/// digest ([`digest`]), then the operations, each a name and its arguments:
/// `push N v1..vN`, `front N v1..vN`, `trim START STOP`, `expire SECONDS`, `delete`,
/// `read START STOP`. Replies `{0}` when the list is not as expected; otherwise
/// `{1, length after the last push or -1, length deleted or -1, 1 if it read, the entries read}`.
/// A key of another type is refused before anything is changed (no EXPIRE reaches it).
pub(super) const SCRIPT: &str = r"
local key = KEYS[1]
local kind = redis.call('TYPE', key)['ok']
if kind ~= 'list' and kind ~= 'none' then
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
local entries = redis.call('LRANGE', key, 0, -1)
if #entries ~= tonumber(ARGV[1]) then return {0} end
local parts = {}
for i, entry in ipairs(entries) do parts[i] = #entry .. ':' .. entry end
if redis.sha1hex(table.concat(parts)) ~= ARGV[2] then return {0} end
local pushed, deleted, did_read, read = -1, -1, 0, {}
local i = 3
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'push' then
    local n = tonumber(ARGV[i + 1])
    for j = i + 2, i + 1 + n do pushed = redis.call('RPUSH', key, ARGV[j]) end
    i = i + 2 + n
  elseif op == 'front' then
    local n = tonumber(ARGV[i + 1])
    for j = i + 1 + n, i + 2, -1 do pushed = redis.call('LPUSH', key, ARGV[j]) end
    i = i + 2 + n
  elseif op == 'trim' then
    redis.call('LTRIM', key, ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  elseif op == 'expire' then
    redis.call('EXPIRE', key, ARGV[i + 1])
    i = i + 2
  elseif op == 'delete' then
    deleted = redis.call('LLEN', key)
    redis.call('DEL', key)
    i = i + 1
  elseif op == 'read' then
    did_read = 1
    read = redis.call('LRANGE', key, ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  else
    return redis.error_reply('ERR agent-memory: unknown operation ' .. op)
  end
end
return {1, pushed, deleted, did_read, read}
";

/// The `EVAL` of [`SCRIPT`] for `ops`, whose first operation is the expectation.
pub(super) fn command(key: &[u8], ops: &[ListOp]) -> redis::Cmd {
    let mut command = redis::cmd("EVAL");
    command.arg(SCRIPT).arg(1).arg(key);
    for op in ops {
        match op {
            ListOp::Expect(entries) => {
                command.arg(entries.len()).arg(digest(entries));
            }
            ListOp::Push(values) => {
                command.arg("push").arg(values.len()).arg(values);
            }
            ListOp::PushFront(values) => {
                command.arg("front").arg(values.len()).arg(values);
            }
            ListOp::Trim(Range { start, stop }) => {
                command.arg("trim").arg(*start).arg(*stop);
            }
            ListOp::Expire(seconds) => {
                command.arg("expire").arg(*seconds);
            }
            ListOp::Delete => {
                command.arg("delete");
            }
            ListOp::Read(Range { start, stop }) => {
                command.arg("read").arg(*start).arg(*stop);
            }
        }
    }
    command
}

/// What the script's reply says was applied.
pub(super) fn applied(reply: &Value) -> Result<Applied, StoreError> {
    let unexpected =
        || StoreError::OutcomeUnknown(format!("the transaction script answered {reply:?}"));
    let Value::Array(items) = reply else {
        return Err(unexpected());
    };
    let int = |index: usize| match items.get(index) {
        Some(Value::Int(value)) => Ok(*value),
        _ => Err(unexpected()),
    };
    if int(0)? == 0 {
        return Err(StoreError::Conflict);
    }
    let count = |value: i64| u64::try_from(value).ok();
    let read = if int(3)? == 1 {
        Some(Ok(super::classify::entries_reply(
            items.get(4).ok_or_else(unexpected)?,
        )?))
    } else {
        None
    };
    Ok(Applied {
        length_after_push: count(int(1)?),
        deleted: count(int(2)?),
        read,
    })
}

/// SHA-1 (hex) of `entries`, each prefixed by its length in decimal and a colon, as the script
/// computes it: two different lists never share the text that is hashed.
fn digest(entries: &[Vec<u8>]) -> String {
    let mut hasher = Sha1::new();
    for entry in entries {
        hasher.update(format!("{}:", entry.len()));
        hasher.update(entry);
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_sha1_of_length_prefixed_entries() {
        // sha1("") and sha1("1:a2:bc"), as `redis.sha1hex` computes them.
        assert_eq!(digest(&[]), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            digest(&[b"a".to_vec(), b"bc".to_vec()]),
            "fd598ee13e448acb47f9923cb6922eef2997a60f"
        );
    }
}
