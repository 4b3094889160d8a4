//! What a memory handle runs with: the policy's settings and the sandbox's limits.

use std::time::Duration;

use crate::bindings;

/// The key prefix of the Python original.
pub const DEFAULT_KEY_PREFIX: &str = "ai:memory:";

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
    /// Largest encoded message, in bytes. 1 MiB: a long tool result fits, a runaway document
    /// does not. Enforced by the policy (a typed refusal) and again by the host on every value.
    pub max_message_bytes: u32,
    /// Settings for policies beyond the default, as (name, value).
    pub extra: Vec<(String, String)>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_messages: 50,
            ttl_seconds: 3600,
            key_prefix: DEFAULT_KEY_PREFIX.to_string(),
            max_message_bytes: 1 << 20,
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
}

impl Settings {
    /// Check the settings.
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

    pub(crate) fn to_wit(&self) -> bindings::Settings {
        bindings::Settings {
            max_messages: self.max_messages,
            ttl_seconds: self.ttl_seconds,
            key_prefix: self.key_prefix.clone(),
            max_message_bytes: self.max_message_bytes,
            extra: self.extra.clone(),
        }
    }

    /// The store key of `session_id`.
    pub fn key_for(&self, session_id: &str) -> String {
        format!("{}{session_id}", self.key_prefix)
    }
}

/// The sandbox around each policy call, and the caps on what it may ask of the host.
///
/// Every limit is per call: a call gets a fresh instance, so nothing a call does (or leaks)
/// carries over to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory of the policy instance. 256 MiB holds a full window of
    /// maximum-size messages (50 x 1 MiB) while decoding, with room to spare; the default
    /// policy uses about 2 MiB for ordinary sessions.
    pub memory_bytes: usize,
    /// Compute time the policy may spend in one call, not counting time waiting on the store.
    /// The default policy needs well under a millisecond for a window of ordinary messages;
    /// 500 ms stops a runaway loop long before an agent notices, and leaves room for decoding
    /// very large windows.
    pub cpu_time: Duration,
    /// Wall-clock bound on a whole call, store time included. The store's own timeouts
    /// (connect 1 s, response 500 ms) times the store calls allowed fit inside the default 10 s.
    pub call_timeout: Duration,
    /// Store calls one request may make. The default policy makes 1, or 2 with its one retry.
    pub max_store_calls: u32,
    /// Operations in one transaction. The default policy sends 3 (push, trim, expire).
    pub max_ops_per_transaction: u32,
    /// Entries one read may return. A window of 50 needs 50; the cap stops a policy from
    /// pulling a huge foreign list into the host.
    pub max_entries_read: u32,
    /// Bytes one read may return (checked after the reply arrives, before it is handed to the
    /// policy). 64 MiB holds a window of 50 maximum-size messages.
    pub max_read_bytes: u64,
    /// Bytes one transaction may push (checked before sending).
    pub max_transaction_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 256 << 20,
            cpu_time: Duration::from_millis(500),
            call_timeout: Duration::from_secs(10),
            max_store_calls: 8,
            max_ops_per_transaction: 16,
            max_entries_read: 10_000,
            max_read_bytes: 64 << 20,
            max_transaction_bytes: 64 << 20,
        }
    }
}

impl Limits {
    /// Check the limits.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let zero = [
            ("memory_bytes", self.memory_bytes == 0),
            ("cpu_time", self.cpu_time.is_zero()),
            ("call_timeout", self.call_timeout.is_zero()),
            ("max_store_calls", self.max_store_calls == 0),
            ("max_ops_per_transaction", self.max_ops_per_transaction == 0),
            ("max_entries_read", self.max_entries_read == 0),
            ("max_read_bytes", self.max_read_bytes == 0),
            ("max_transaction_bytes", self.max_transaction_bytes == 0),
        ];
        match zero.into_iter().find(|(_, is_zero)| *is_zero) {
            Some((name, _)) => Err(SettingsError::ZeroLimit(name)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_python_originals_and_valid() {
        let settings = Settings::default();
        assert_eq!((settings.max_messages, settings.ttl_seconds), (50, 3600));
        assert_eq!(settings.key_for("abc"), "ai:memory:abc");
        assert_eq!(settings.validate(), Ok(()));
        assert_eq!(Limits::default().validate(), Ok(()));
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
}
