//! What a memory handle runs with: the policy's settings and the sandbox's limits, each
//! default a named constant with the reason for its value.

use std::time::Duration;

/// The name a handle has unless [`crate::MemoryBuilder::name`] gives it one.
pub const DEFAULT_HANDLE_NAME: &str = "default";

/// The longest handle name ([`crate::MemoryBuilder::name`]).
pub const MAX_HANDLE_NAME_BYTES: usize = 64;

/// The key prefix of the Python original.
pub const DEFAULT_KEY_PREFIX: &str = "ai:memory:";

/// The window of the Python original: the newest 50 messages.
pub const DEFAULT_MAX_MESSAGES: u32 = 50;

/// The TTL of the Python original: one hour after the last write.
pub const DEFAULT_TTL_SECONDS: u32 = 3600;

/// Largest encoded message: 1 MiB. A long tool result fits, a runaway document does not.
pub const DEFAULT_MAX_MESSAGE_BYTES: u32 = 1 << 20;

/// Linear memory of one policy instance: 256 MiB. Reading a full window of maximum-size
/// messages (50 x 1 MiB) holds the entries, the decoded messages and the result at once —
/// about 3 x 50 MiB at the peak — with room to spare; ordinary sessions use about 2 MiB.
pub const DEFAULT_MEMORY_BYTES: usize = 256 << 20;

/// Largest linear memory a policy instance may ever have: the ceiling for
/// [`Limits::memory_bytes`], and the default (and most) for
/// [`crate::RuntimeConfig::max_memory_bytes`], which lays out the instance pool.
pub const MAX_POLICY_MEMORY_BYTES: usize = 1 << 30;

/// How many times the window's worth of message bytes a policy instance must be able to hold
/// (entries as read, decoded messages, the result being returned): the cross-check in
/// [`Limits::check_against`] uses it.
pub const WINDOW_MEMORY_FACTOR: u64 = 4;

/// The fixed part of a call's compute budget, in wasmtime fuel (about one unit per WebAssembly
/// instruction): 100 million, tens of milliseconds of CPU. An ordinary call of the default
/// policy uses well under a million; a runaway loop that was handed little data is stopped
/// after this much.
pub const DEFAULT_FUEL_BASE: u64 = 100_000_000;

/// The part of a call's compute budget that grows with the data the policy is handed: fuel per
/// byte of the messages it is given to write and of every store reply it reads. The work of
/// decoding and encoding is proportional to the bytes, with a constant that depends on their
/// shape. Measured on full windows of 50 messages of 1 MiB (`tests/examples/fuel_probe.rs`),
/// the default policy needs per byte: ASCII text 30 to read, 54 to write; non-ASCII text 61 and
/// 177 (each UTF-8 byte becomes part of a `\uXXXX` escape); lists of floats, integers or small
/// objects, the worst shapes, 230 to 285. Interpreted policies need up to a hundred times
/// that, measured the same way on windows of 50 messages of 16 KiB (`fuel_probe --policy`):
/// the JavaScript example (SpiderMonkey, with its own exact-JSON tokenizer) 10,000 per byte of
/// floats, 25,700 of integers and 28,400 of small objects; the Python example (CPython's
/// `json`) 1,040 per byte of floats, 790 of integers and 3,650 of small objects. 32,000 fits them all, so that no legitimate call of an interpreted
/// policy is stopped by its budget. What this costs: a runaway handed a large input may run
/// until the call timeout instead (32,000 per byte of a 1 MiB message is about 15 s of
/// compute, past the 10 s timeout); a runaway handed little is stopped by the fixed part
/// within tens of milliseconds. Compiled policies (the built-in ones) never come near it.
pub const DEFAULT_FUEL_PER_BYTE: u64 = 32_000;

/// Fuel between yields to the async executor: a long call shares its thread every few
/// milliseconds instead of holding it to the end.
pub const FUEL_YIELD_INTERVAL: u64 = 10_000_000;

/// Wall-clock bound on a whole call, store time included: 10 s. The store's own timeouts
/// (connect 1 s, response 500 ms) times the store calls a request may make fit inside it.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Store calls one request may make: 8. The default policy makes 1, or 2 when it retries a
/// read once.
pub const DEFAULT_MAX_STORE_CALLS: u32 = 8;

/// Operations in one transaction: 16. An append is 3 (push, trim, expire).
pub const DEFAULT_MAX_OPS_PER_TRANSACTION: u32 = 16;

/// Entries one read may return: 10,000. A window of 50 needs 50; the cap stops a policy from
/// pulling a huge foreign list into the host.
pub const DEFAULT_MAX_ENTRIES_READ: u32 = 10_000;

/// Bytes one read may return: 64 MiB, which holds a window of 50 maximum-size messages.
/// Checked after the reply arrives, before it is handed to the policy.
pub const DEFAULT_MAX_READ_BYTES: u64 = 64 << 20;

/// Bytes one transaction may push (checked before sending), and bytes of messages one write
/// call may hand the policy (checked before the policy runs): 64 MiB.
pub const DEFAULT_MAX_TRANSACTION_BYTES: u64 = 64 << 20;

/// Messages one write call may carry: 100,000. Only the newest `max_messages` are stored, but
/// each is checked; the cap bounds that work and the memory of the call.
pub const DEFAULT_MAX_BATCH_MESSAGES: u32 = 100_000;

/// Settings handed to the policy on every call (WIT `settings`). The defaults are the Python
/// original's: the newest 50 messages, one hour after the last write, under `ai:memory:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Messages a session keeps (the newest). 0 keeps none: every write deletes the session.
    pub max_messages: u32,
    /// Seconds a session lives after its last write; renewed by every write. Must be at least 1.
    pub ttl_seconds: u32,
    /// Prefix of every session key. The host only lets a call touch `prefix + session id`.
    pub key_prefix: String,
    /// Largest encoded message, in bytes ([`DEFAULT_MAX_MESSAGE_BYTES`]). Checked by the host
    /// before the policy runs, by the policy, and again by the host on every value pushed.
    pub max_message_bytes: u32,
    /// Settings for policies beyond the default, as (name, value).
    pub extra: Vec<(String, String)>,
}

fn known_settings(known: &[String]) -> String {
    if known.is_empty() {
        "it reads none".to_string()
    } else {
        format!("it reads: {}", known.join(", "))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_messages: DEFAULT_MAX_MESSAGES,
            ttl_seconds: DEFAULT_TTL_SECONDS,
            key_prefix: DEFAULT_KEY_PREFIX.to_string(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            extra: Vec::new(),
        }
    }
}

/// Why settings or limits were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A TTL of 0 would make Redis delete the key on every write.
    #[error("ttl_seconds must be at least 1 (EXPIRE 0 deletes the key)")]
    ZeroTtl,
    /// An empty prefix would put sessions among unrelated keys.
    #[error("key_prefix must not be empty")]
    EmptyPrefix,
    /// A limit is zero where it must not be.
    #[error("limit `{0}` must be greater than zero")]
    ZeroLimit(&'static str),
    /// A limit is above what the process-wide instance pool was laid out for.
    #[error("limit `{limit}` = {value} is above the ceiling of {ceiling}")]
    OverCeiling {
        /// The limit.
        limit: &'static str,
        /// Its value.
        value: u64,
        /// The most the engine allows.
        ceiling: u64,
    },
    /// An extra setting names something the policy does not read.
    #[error("policy {policy} reads no setting `{name}`; {}", known_settings(known))]
    UnknownSetting {
        /// The setting.
        name: String,
        /// The policy (its origin).
        policy: String,
        /// The settings it reads.
        known: Vec<String>,
    },
    /// An extra setting's value is not one its declaration accepts.
    #[error("setting `{name}` = {value:?} is not accepted: it takes {accepts}")]
    InvalidSetting {
        /// The setting.
        name: String,
        /// The value given.
        value: String,
        /// What it accepts.
        accepts: String,
    },
    /// An extra setting is given twice.
    #[error("setting `{0}` is given twice")]
    RepeatedSetting(String),
    /// The settings ask for more than the limits let a call do: every such call would fail.
    #[error("{setting} = {value} cannot work with {limit} = {allowed}: {why}")]
    Conflict {
        /// The setting.
        setting: &'static str,
        /// Its value.
        value: u64,
        /// The limit it runs into.
        limit: &'static str,
        /// That limit's value.
        allowed: u64,
        /// What would fail.
        why: &'static str,
    },
}

impl Settings {
    /// Check the settings on their own.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.ttl_seconds == 0 {
            return Err(SettingsError::ZeroTtl);
        }
        if self.key_prefix.is_empty() {
            return Err(SettingsError::EmptyPrefix);
        }
        if self.max_message_bytes == 0 {
            return Err(SettingsError::ZeroLimit("max_message_bytes"));
        }
        Ok(())
    }

    /// The store key of `session_id`.
    pub fn key_for(&self, session_id: &str) -> String {
        format!("{}{session_id}", self.key_prefix)
    }

    /// The most bytes a full window can hold.
    fn window_bytes(&self) -> u64 {
        u64::from(self.max_messages) * u64::from(self.max_message_bytes)
    }
}

/// The sandbox around each policy call, and the caps on what it may ask of the host.
///
/// Every limit is per call: a warm instance gets each one afresh when a call begins
/// (`memory_bytes` bounds the instance, which is dropped once its memory grew more than
/// [`crate::RuntimeConfig::reuse_memory_growth`]). Each default is a `DEFAULT_…` constant that
/// says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory of the policy instance ([`DEFAULT_MEMORY_BYTES`]).
    pub memory_bytes: usize,
    /// Compute budget of one call in wasmtime fuel, fixed part ([`DEFAULT_FUEL_BASE`]). The
    /// budget counts the policy's own work: not the time it waits on the store, and not the
    /// time the machine is busy elsewhere, so load never fails a legitimate call.
    pub fuel_base: u64,
    /// Compute budget per byte handed to the policy ([`DEFAULT_FUEL_PER_BYTE`]): the messages
    /// of a write, and every store reply as it arrives.
    pub fuel_per_byte: u64,
    /// Wall-clock bound on a whole call, store time included ([`DEFAULT_CALL_TIMEOUT`]).
    pub call_timeout: Duration,
    /// Store calls one request may make ([`DEFAULT_MAX_STORE_CALLS`]).
    pub max_store_calls: u32,
    /// Operations in one transaction ([`DEFAULT_MAX_OPS_PER_TRANSACTION`]).
    pub max_ops_per_transaction: u32,
    /// Entries one read may return ([`DEFAULT_MAX_ENTRIES_READ`]).
    pub max_entries_read: u32,
    /// Bytes one read may return ([`DEFAULT_MAX_READ_BYTES`]).
    pub max_read_bytes: u64,
    /// Bytes one transaction may push, and bytes of messages one write call may carry
    /// ([`DEFAULT_MAX_TRANSACTION_BYTES`]).
    pub max_transaction_bytes: u64,
    /// Messages one write call may carry ([`DEFAULT_MAX_BATCH_MESSAGES`]).
    pub max_batch_messages: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            fuel_base: DEFAULT_FUEL_BASE,
            fuel_per_byte: DEFAULT_FUEL_PER_BYTE,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            max_store_calls: DEFAULT_MAX_STORE_CALLS,
            max_ops_per_transaction: DEFAULT_MAX_OPS_PER_TRANSACTION,
            max_entries_read: DEFAULT_MAX_ENTRIES_READ,
            max_read_bytes: DEFAULT_MAX_READ_BYTES,
            max_transaction_bytes: DEFAULT_MAX_TRANSACTION_BYTES,
            max_batch_messages: DEFAULT_MAX_BATCH_MESSAGES,
        }
    }
}

impl Limits {
    /// Check the limits on their own.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let zero = [
            ("memory_bytes", self.memory_bytes == 0),
            ("fuel_base", self.fuel_base == 0),
            ("call_timeout", self.call_timeout.is_zero()),
            ("max_store_calls", self.max_store_calls == 0),
            ("max_ops_per_transaction", self.max_ops_per_transaction == 0),
            ("max_entries_read", self.max_entries_read == 0),
            ("max_read_bytes", self.max_read_bytes == 0),
            ("max_transaction_bytes", self.max_transaction_bytes == 0),
            ("max_batch_messages", self.max_batch_messages == 0),
        ];
        if let Some((name, _)) = zero.into_iter().find(|(_, is_zero)| *is_zero) {
            return Err(SettingsError::ZeroLimit(name));
        }
        self.check_memory_ceiling(MAX_POLICY_MEMORY_BYTES)
    }

    /// Check that `memory_bytes` is at most `ceiling`: [`MAX_POLICY_MEMORY_BYTES`] for any
    /// handle, and a policy's runtime's [`crate::RuntimeConfig::max_memory_bytes`], which its
    /// instance pool is laid out for.
    pub(crate) fn check_memory_ceiling(&self, ceiling: usize) -> Result<(), SettingsError> {
        if self.memory_bytes > ceiling {
            return Err(SettingsError::OverCeiling {
                limit: "memory_bytes",
                value: self.memory_bytes as u64,
                ceiling: ceiling as u64,
            });
        }
        Ok(())
    }

    /// Check that `settings` can work within these limits: that a full window can be read,
    /// held and written. Accepting settings that make every read fail would only move the
    /// error from the builder to production.
    pub fn check_against(&self, settings: &Settings) -> Result<(), SettingsError> {
        let window = settings.window_bytes();
        let checks = [
            (
                "max_messages",
                u64::from(settings.max_messages),
                "max_entries_read",
                u64::from(self.max_entries_read),
                "a full window could not be read back",
                u64::from(settings.max_messages) <= u64::from(self.max_entries_read),
            ),
            (
                "max_messages x max_message_bytes",
                window,
                "max_read_bytes",
                self.max_read_bytes,
                "a full window of maximum-size messages could not be read back",
                window <= self.max_read_bytes,
            ),
            (
                "max_message_bytes",
                u64::from(settings.max_message_bytes),
                "max_transaction_bytes",
                self.max_transaction_bytes,
                "a maximum-size message could not be written",
                u64::from(settings.max_message_bytes) <= self.max_transaction_bytes,
            ),
            (
                "max_messages x max_message_bytes x 4",
                window.saturating_mul(WINDOW_MEMORY_FACTOR),
                "memory_bytes",
                self.memory_bytes as u64,
                "the policy could not hold a full window of maximum-size messages",
                window.saturating_mul(WINDOW_MEMORY_FACTOR) <= self.memory_bytes as u64,
            ),
            (
                "an append (push, trim, expire)",
                3,
                "max_ops_per_transaction",
                u64::from(self.max_ops_per_transaction),
                "no write could keep the window and the TTL",
                self.max_ops_per_transaction >= 3,
            ),
        ];
        for (setting, value, limit, allowed, why, ok) in checks {
            if !ok {
                return Err(SettingsError::Conflict {
                    setting,
                    value,
                    limit,
                    allowed,
                    why,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_python_originals_and_valid_together() {
        let settings = Settings::default();
        assert_eq!((settings.max_messages, settings.ttl_seconds), (50, 3600));
        assert_eq!(settings.key_for("abc"), "ai:memory:abc");
        assert_eq!(settings.validate(), Ok(()));
        assert_eq!(Limits::default().validate(), Ok(()));
        assert_eq!(Limits::default().check_against(&settings), Ok(()));
    }

    #[test]
    fn a_zero_ttl_or_empty_prefix_is_refused() {
        let zero_ttl = Settings {
            ttl_seconds: 0,
            ..Settings::default()
        };
        assert_eq!(zero_ttl.validate(), Err(SettingsError::ZeroTtl));
        let no_prefix = Settings {
            key_prefix: String::new(),
            ..Settings::default()
        };
        assert_eq!(no_prefix.validate(), Err(SettingsError::EmptyPrefix));
    }

    #[test]
    fn a_zero_limit_is_named() {
        let limits = Limits {
            max_store_calls: 0,
            ..Limits::default()
        };
        assert_eq!(
            limits.validate(),
            Err(SettingsError::ZeroLimit("max_store_calls"))
        );
    }

    #[test]
    fn a_window_the_read_caps_cannot_return_is_refused() {
        let too_wide = Settings {
            max_messages: DEFAULT_MAX_ENTRIES_READ + 1,
            max_message_bytes: 1000,
            ..Settings::default()
        };
        assert!(matches!(
            Limits::default().check_against(&too_wide),
            Err(SettingsError::Conflict {
                limit: "max_entries_read",
                ..
            })
        ));
        let too_heavy = Settings {
            max_messages: 200,
            ..Settings::default()
        };
        assert!(matches!(
            Limits::default().check_against(&too_heavy),
            Err(SettingsError::Conflict {
                limit: "max_read_bytes",
                ..
            })
        ));
    }

    #[test]
    fn a_window_the_sandbox_cannot_hold_or_write_is_refused() {
        let small_memory = Limits {
            memory_bytes: 64 << 20,
            ..Limits::default()
        };
        assert!(matches!(
            small_memory.check_against(&Settings::default()),
            Err(SettingsError::Conflict {
                limit: "memory_bytes",
                ..
            })
        ));
        let two_ops = Limits {
            max_ops_per_transaction: 2,
            ..Limits::default()
        };
        assert!(matches!(
            two_ops.check_against(&Settings::default()),
            Err(SettingsError::Conflict {
                limit: "max_ops_per_transaction",
                ..
            })
        ));
    }
}
