//! Redis store addresses, parsed once into what the connections need: TLS or not, where the
//! servers are (one server, the sentinels of a master, or a cluster's seed nodes), and the
//! credentials and database every connection authenticates with.
//!
//! | address | servers |
//! |---|---|
//! | `redis://[user:pass@]host[:port][/db]`, `rediss://…` | one server (TLS with `rediss`) |
//! | `redis+unix:///path/to.sock[?db=N]` | one server on a unix socket |
//! | `redis+sentinel://[user:pass@]s1:port,s2:port/MASTER[/db]`, `rediss+sentinel://…` | the master the sentinels name (TLS to sentinels and master with `rediss`) |
//! | `redis+cluster://[user:pass@]h1:port,h2:port`, `rediss+cluster://…` | a Redis Cluster, from these seed nodes |
//!
//! Credentials and the database are parsed by redis-rs (percent-decoding and all) from a
//! `redis://` URL with the same user part, path and query, so every scheme reads them alike.
//! Nothing here ever puts a password in a message: see [`redact`].

use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use super::sentinel::Sentinels;
use super::slots::NodeAddress;
use crate::store::OpenError;

/// A parsed Redis store address.
#[derive(Debug, Clone)]
pub(crate) struct Address {
    /// Whether every connection is TLS (to servers and to sentinels alike).
    pub tls: bool,
    /// Where the servers are.
    pub servers: Servers,
    /// User, password, database and protocol for every server connection.
    pub settings: RedisConnectionInfo,
}

/// Where an address says the servers are.
#[derive(Debug, Clone)]
pub(crate) enum Servers {
    /// One server, by TCP or unix socket.
    One(ConnectionAddr),
    /// The master that these sentinels name, found again on every connect.
    Sentinel(Sentinels),
    /// A Redis Cluster, discovered from these seed nodes.
    Cluster(Vec<NodeAddress>),
}

/// The schemes this build accepts, for messages.
pub(crate) const SCHEMES: &str = "redis://, rediss://, redis+unix://, redis+sentinel://, \
                                  rediss+sentinel://, redis+cluster://, rediss+cluster://";

/// Whether `url` starts with one of the Redis schemes (parsed by [`parse`]).
pub(crate) fn is_redis_url(url: &str) -> bool {
    [
        "redis://",
        "rediss://",
        "redis+unix://",
        "redis+sentinel://",
        "rediss+sentinel://",
        "redis+cluster://",
        "rediss+cluster://",
    ]
    .iter()
    .any(|scheme| url.starts_with(scheme))
}

/// Parse a Redis store address.
pub(crate) fn parse(url: &str) -> Result<Address, OpenError> {
    let invalid = |reason: &str| OpenError::RedisUrl(format!("{}: {reason}", redact(url)));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("not a Redis URL"))?;
    let (tls, topology) = match scheme {
        "redis" => (false, ""),
        "rediss" => (true, ""),
        "redis+unix" => (false, "unix"),
        "redis+sentinel" => (false, "sentinel"),
        "rediss+sentinel" => (true, "sentinel"),
        "redis+cluster" => (false, "cluster"),
        "rediss+cluster" => (true, "cluster"),
        _ => return Err(invalid(&format!("expected one of {SCHEMES}"))),
    };
    let rest = without_fragment(rest, tls, url)?;
    match topology {
        "sentinel" | "cluster" => {
            let (credentials, rest) = match rest.rsplit_once('@') {
                Some((credentials, rest)) => (Some(credentials), rest),
                None => (None, rest),
            };
            let (hosts, path) = match rest.find(['/', '?']) {
                Some(at) => rest.split_at(at),
                None => (rest, ""),
            };
            let hosts = parse_hosts(hosts).map_err(|reason| invalid(&reason))?;
            // The path: `/MASTER[/db]` for a sentinel address, `[/0]` for a cluster.
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            let mut segments = path.trim_start_matches('/').splitn(2, '/');
            let (first, second) = (segments.next().unwrap_or(""), segments.next());
            let credentials = credentials.map_or(String::new(), |c| format!("{c}@"));
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{query}")
            };
            if topology == "sentinel" {
                if first.is_empty() {
                    return Err(invalid(
                        "no master name (redis+sentinel://[user:pass@]host:port[,host:port...]/MASTER_NAME[/db])",
                    ));
                }
                let db = second.map_or(String::new(), |db| format!("/{db}"));
                let settings =
                    settings(&format!("redis://{credentials}sentinel-master{db}{query}"))
                        .map_err(|reason| invalid(&reason))?;
                let sentinels = Sentinels::new(hosts, first.to_string(), &settings);
                return Ok(Address {
                    tls,
                    servers: Servers::Sentinel(sentinels),
                    settings,
                });
            }
            if second.is_some() || !(first.is_empty() || first == "0") {
                return Err(invalid(
                    "a Redis Cluster has only database 0 (redis+cluster://[user:pass@]host:port[,host:port...])",
                ));
            }
            let settings = settings(&format!("redis://{credentials}cluster-node{query}"))
                .map_err(|reason| invalid(&reason))?;
            Ok(Address {
                tls,
                servers: Servers::Cluster(hosts),
                settings,
            })
        }
        _ => {
            // One server: redis-rs parses the whole address (as `redis://` for TLS, which its
            // parser knows only with its own TLS features; TLS is made here).
            let plain = if tls {
                format!("redis://{rest}")
            } else {
                url.to_string()
            };
            let info = plain
                .as_str()
                .into_connection_info()
                .map_err(|error| invalid(&error.to_string()))?;
            Ok(Address {
                tls,
                servers: Servers::One(info.addr().clone()),
                settings: info.redis_settings().clone(),
            })
        }
    }
}

/// `rest` without its `#fragment`. A TLS address that asks not to verify the server
/// (`#insecure`) is refused, and so is any other fragment on any address: a fragment is never
/// silently ignored.
fn without_fragment<'a>(rest: &'a str, tls: bool, url: &str) -> Result<&'a str, OpenError> {
    match rest.split_once('#') {
        None => Ok(rest),
        Some((_, "insecure")) if tls => Err(OpenError::Tls(
            "certificate verification cannot be turned off (#insecure)".to_string(),
        )),
        Some((_, fragment)) if tls => Err(OpenError::Tls(format!(
            "unknown address fragment #{fragment}"
        ))),
        Some((_, fragment)) => Err(OpenError::RedisUrl(format!(
            "{}: unknown address fragment #{fragment}",
            redact(url)
        ))),
    }
}

/// `host:port[,host:port...]`, hosts being names, IPv4 or bracketed IPv6 addresses.
fn parse_hosts(hosts: &str) -> Result<Vec<NodeAddress>, String> {
    if hosts.is_empty() {
        return Err("no host:port".to_string());
    }
    hosts
        .split(',')
        .map(|host| {
            let (name, port) = host
                .rsplit_once(':')
                .ok_or_else(|| format!("{host} has no port"))?;
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("{host}: bad port"))?;
            let name = name.trim_start_matches('[').trim_end_matches(']');
            if name.is_empty() {
                return Err(format!("{host} has no host"));
            }
            Ok(NodeAddress {
                host: name.to_string(),
                port,
            })
        })
        .collect()
}

fn settings(url: &str) -> Result<RedisConnectionInfo, String> {
    url.into_connection_info()
        .map(|info| info.redis_settings().clone())
        .map_err(|error| error.to_string())
}

/// `url` with any password replaced, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{}", &rest[at + 1..])
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_seeds(url: &str) -> Vec<String> {
        match parse(url).unwrap().servers {
            Servers::Cluster(seeds) => seeds.iter().map(ToString::to_string).collect(),
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn passwords_are_redacted_for_messages() {
        assert_eq!(
            redact("redis://user:secret@host:1/0"),
            "redis://user:***@host:1/0"
        );
        assert_eq!(redact("redis://:secret@host"), "redis://:***@host");
        assert_eq!(redact("redis://host:1"), "redis://host:1");
        assert_eq!(
            redact("redis+cluster://u:secret@a:1,b:2"),
            "redis+cluster://u:***@a:1,b:2"
        );
    }

    #[test]
    fn cluster_addresses_name_their_seed_nodes_and_credentials() {
        assert_eq!(
            cluster_seeds("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"),
            ["127.0.0.1:7000", "127.0.0.1:7001"]
        );
        assert_eq!(cluster_seeds("redis+cluster://[::1]:7000/"), ["[::1]:7000"]);
        let address = parse("rediss+cluster://app:s%40cret@h1:7000,h2:7001/0").unwrap();
        assert!(address.tls);
        assert_eq!(address.settings.username(), Some("app"));
        assert_eq!(address.settings.password(), Some("s@cret"));
        assert_eq!(address.settings.db(), 0);
    }

    #[test]
    fn a_cluster_address_with_a_database_or_without_hosts_is_refused_without_its_password() {
        for bad in [
            "redis+cluster://u:secret@h:1/2",
            "redis+cluster://u:secret@h:1/0/1",
            "redis+cluster://u:secret@",
            "redis+cluster://u:secret@h",
            "redis+cluster://u:secret@h:x",
            "redis+cluster://u:secret@:1",
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(!error.contains("secret"), "{error}");
            assert!(error.contains("***"), "{bad}: {error}");
        }
    }

    #[test]
    fn sentinel_addresses_name_their_sentinels_master_and_database() {
        let address = parse("redis+sentinel://u:p@a:26379,b:26380/mymaster/2").unwrap();
        let Servers::Sentinel(sentinels) = &address.servers else {
            panic!("not a sentinel address");
        };
        assert_eq!(
            sentinels.describe(),
            "sentinel master mymaster via a:26379,b:26380"
        );
        assert_eq!(address.settings.db(), 2);
        assert_eq!(address.settings.password(), Some("p"));
        for bad in [
            "redis+sentinel://a:1",
            "redis+sentinel://a/m",
            "redis+sentinel://a:x/m",
            "redis+sentinel://u:secret@a:1/",
        ] {
            let error = parse(bad).unwrap_err().to_string();
            assert!(!error.contains("secret"), "{error}");
        }
    }

    #[test]
    fn one_server_addresses_are_parsed_by_redis_rs_and_tls_keeps_its_fragment_rules() {
        let address = parse("rediss://u:p@cache.example:6380/3").unwrap();
        assert!(address.tls);
        assert!(matches!(
            address.servers,
            Servers::One(ConnectionAddr::Tcp(ref host, 6380)) if host == "cache.example"
        ));
        assert_eq!(address.settings.db(), 3);
        assert!(matches!(
            parse("rediss://h:1#insecure"),
            Err(OpenError::Tls(_))
        ));
        assert!(matches!(
            parse("rediss+cluster://h:1#insecure"),
            Err(OpenError::Tls(_))
        ));
        assert!(parse("redis://h:1#x").is_err());
        assert!(parse("rediss+sentinel://a:1/m").unwrap().tls);
        assert!(matches!(
            parse("rediss+sentinel://a:1/m#insecure"),
            Err(OpenError::Tls(_))
        ));
        assert!(matches!(
            parse("redis+unix:///tmp/r.sock").unwrap().servers,
            Servers::One(ConnectionAddr::Unix(_))
        ));
    }
}
