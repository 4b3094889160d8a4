//! Store addresses: what `--store`, `AGENT_MEMORY_STORE` and [`StoreSpec::parse`] accept.
//!
//! Strict on purpose: a mistyped Redis address that silently became a local file would "store"
//! an agent's memory where no one looks, and exit 0. So only these are accepted:
//!
//! | address | store |
//! |---|---|
//! | `redis://[user:pass@]host[:port][/db]`, `rediss://…` | a Redis server over TCP (TLS) |
//! | `redis+unix:///path/to.sock[?db=N]`, `unix:///path` | a Redis server on a unix socket |
//! | `redis+sentinel://[user:pass@]s1:port,s2:port/MASTER[/db]`, `rediss+sentinel://…` | the master Sentinel names (TLS) |
//! | `redis+cluster://[user:pass@]h1:port,h2:port`, `rediss+cluster://…` | a Redis Cluster |
//! | `file:PATH` | the embedded store file at PATH |
//! | a path with a `/` in it, or ending in `.redb` | the embedded store file there |
//! | `memory:` | process memory (nothing is kept) |
//!
//! Anything else is refused with a one-line hint: `localhost:6379` suggests
//! `redis://localhost:6379`, `redis:/host` suggests `redis://host`, `memory` suggests `memory:`.

use std::path::PathBuf;

use super::OpenError;
use super::redis::{SCHEMES, is_redis_url, parse_address};

/// Which store to use, parsed from a `--store` argument or `AGENT_MEMORY_STORE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// A Redis deployment: `redis://`, `rediss://`, `redis+unix://`, `redis+sentinel://`,
    /// `rediss+sentinel://`, `redis+cluster://` or `rediss+cluster://` (see the module
    /// documentation).
    Redis(String),
    /// The embedded file store at this path.
    Embedded(PathBuf),
    /// Process memory (`memory:`): nothing survives the process.
    InMemory,
}

impl StoreSpec {
    /// Parse a store address (see the module documentation for what is accepted).
    pub fn parse(spec: &str) -> Result<Self, OpenError> {
        let refuse = |reason: String| Err(OpenError::InvalidSpec(reason));
        if spec.is_empty() {
            return refuse("empty store address".to_string());
        }
        if is_redis_url(spec) {
            // Parsed now, so a malformed address is refused with the address rather than at
            // the first call.
            parse_address(spec)?;
            return Ok(Self::Redis(spec.to_string()));
        }
        if let Some(path) = spec.strip_prefix("unix://") {
            let url = format!("redis+unix://{path}");
            parse_address(&url)?;
            return Ok(Self::Redis(url));
        }
        if spec == "memory:" || spec == "memory://" {
            return Ok(Self::InMemory);
        }
        if let Some(path) = spec.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return refuse("file: needs a path, as in file:./memory.redb".to_string());
            }
            return Ok(Self::Embedded(PathBuf::from(path)));
        }
        if let Some(hint) = hint_for(spec) {
            return refuse(format!(
                "{spec} is not a store address: did you mean {hint}?"
            ));
        }
        if let Some(scheme) = scheme_of(spec) {
            return refuse(format!(
                "{spec}: unknown scheme `{scheme}` (expected {SCHEMES}, file: or memory:)"
            ));
        }
        if spec.contains('/') || spec.to_ascii_lowercase().ends_with(".redb") {
            return Ok(Self::Embedded(PathBuf::from(spec)));
        }
        refuse(format!(
            "{spec} is not a store address: use redis://HOST:PORT, redis+unix:///SOCKET, a file \
             path such as ./{spec}.redb (or file:{spec}), or memory:"
        ))
    }
}

/// `scheme` when `spec` starts with `scheme:` (letters, digits, `+`, `-`, `.`; a letter first).
fn scheme_of(spec: &str) -> Option<&str> {
    let (scheme, _) = spec.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '+' | '-' | '.')))
    .then_some(scheme)
}

/// The address the user most likely meant, for the common slips.
fn hint_for(spec: &str) -> Option<String> {
    if spec == "memory" || spec == "mem:" || spec == "memory:/" {
        return Some("memory:".to_string());
    }
    // redis:/host, redis:host, redis:///host, redis//host, Redis://host
    let lower = spec.to_ascii_lowercase();
    if let Some(rest) = lower
        .strip_prefix("redis:")
        .or_else(|| lower.strip_prefix("redis//"))
        .or_else(|| lower.strip_prefix("redis/"))
    {
        let rest = &spec[spec.len() - rest.len()..];
        // (A correct `redis://` address never gets here.)
        let target = rest.trim_start_matches('/');
        if !target.is_empty() {
            return Some(format!("redis://{target}"));
        }
    }
    if looks_like_host_port(spec) {
        return Some(format!("redis://{spec}"));
    }
    None
}

/// `host:port` or `host:port/db`, with a host name, an IPv4 address or a bracketed IPv6 one.
fn looks_like_host_port(spec: &str) -> bool {
    let (address, db) = spec.split_once('/').unwrap_or((spec, "0"));
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-'))
    };
    host_ok && port.parse::<u16>().is_ok() && db.parse::<u32>().is_ok()
}

impl StoreSpec {
    /// Whether this and `other` name one embedded file, however spelled (`./F` and `F`, a
    /// symlink, a hard link). Opening one file twice in a process waits for itself, so callers
    /// that would open both (a copy) ask first.
    pub fn names_the_same_file_as(&self, other: &StoreSpec) -> bool {
        match (self, other) {
            (StoreSpec::Embedded(a), StoreSpec::Embedded(b)) => same_file(a, b),
            _ => false,
        }
    }
}

/// Whether two paths name one file (device and inode; for paths that do not exist yet, the
/// absolute paths).
pub(crate) fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => std::path::absolute(a).ok() == std::path::absolute(b).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(spec: &str) -> String {
        match StoreSpec::parse(spec) {
            Err(OpenError::InvalidSpec(reason) | OpenError::RedisUrl(reason)) => reason,
            other => panic!("{spec:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn store_addresses_parse_by_scheme() {
        assert_eq!(
            StoreSpec::parse("redis://127.0.0.1:7000/2").unwrap(),
            StoreSpec::Redis("redis://127.0.0.1:7000/2".into())
        );
        assert_eq!(
            StoreSpec::parse("unix:///tmp/r.sock").unwrap(),
            StoreSpec::Redis("redis+unix:///tmp/r.sock".into())
        );
        assert_eq!(StoreSpec::parse("memory:").unwrap(), StoreSpec::InMemory);
        assert_eq!(
            StoreSpec::parse("file:/tmp/m.redb").unwrap(),
            StoreSpec::Embedded("/tmp/m.redb".into())
        );
        assert_eq!(
            StoreSpec::parse("file:notes").unwrap(),
            StoreSpec::Embedded("notes".into())
        );
    }

    #[test]
    fn unmistakable_paths_are_embedded_files() {
        for path in [
            "./m.redb",
            "/var/lib/x",
            "data/memory",
            "memory.redb",
            "dir/a:b",
        ] {
            assert_eq!(
                StoreSpec::parse(path).unwrap(),
                StoreSpec::Embedded(path.into()),
                "{path}"
            );
        }
    }

    #[test]
    fn redis_slips_are_refused_with_the_address_meant() {
        let cases = [
            ("localhost:6379", "redis://localhost:6379"),
            ("127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis.internal:6380/2", "redis://redis.internal:6380/2"),
            ("[::1]:6379", "redis://[::1]:6379"),
            ("redis:/host:6379", "redis://host:6379"),
            ("redis:host:6379", "redis://host:6379"),
            ("redis//host", "redis://host"),
            ("Redis://host", "redis://host"),
            ("memory", "memory:"),
        ];
        for (spec, meant) in cases {
            let reason = refused(spec);
            assert!(
                reason.contains(&format!("did you mean {meant}?")),
                "{spec}: {reason}"
            );
        }
    }

    #[test]
    fn bare_words_unknown_schemes_and_tls_are_refused_with_a_reason() {
        assert!(refused("notes").contains("not a store address"));
        assert!(refused("http://x").contains("unknown scheme `http`"));
        assert_eq!(
            StoreSpec::parse("redis+cluster://a:1,b:2").unwrap(),
            StoreSpec::Redis("redis+cluster://a:1,b:2".into())
        );
        assert!(refused("redis+cluster://a:1/3").contains("database 0"));
        assert!(StoreSpec::parse("rediss+sentinel://a:1,b:2/m").is_ok());
        assert!(StoreSpec::parse("rediss://cache.example:6380/0").is_ok());
        assert!(refused("").contains("empty"));
        assert!(refused("file:").contains("needs a path"));
        assert!(refused("redis://host:notaport").contains("redis://host:notaport"));
    }

    #[test]
    fn passwords_never_appear_in_messages() {
        let reason = refused("redis://u:secret@host:notaport");
        assert!(!reason.contains("secret"), "{reason}");
    }
}
