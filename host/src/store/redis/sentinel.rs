//! `redis+sentinel://` addresses: the master is found through Redis Sentinel, on every connect.
//!
//! `redis+sentinel://[user:pass@]sentinel1:port,sentinel2:port/MASTER_NAME[/db]`. Each new
//! connection asks the sentinels in turn (`SENTINEL get-master-addr-by-name`) where the master
//! is now, connects there, and checks with `ROLE` that it really is a master (during a failover
//! a sentinel can still name the old one). The store retires its connection when it breaks and
//! when a server answers `READONLY` (a demoted master), so the next call finds the promoted
//! replica without restarting the host. The user and password are the master's; the sentinels
//! are asked without credentials.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo, Value};

use crate::store::OpenError;

/// The sentinels to ask, and the master they watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sentinels {
    /// Sentinel addresses, asked in this order.
    addresses: Vec<(String, u16)>,
    /// The master's name in the sentinels' configuration.
    master: String,
}

/// For a `redis+sentinel://` address, the sentinels and the `redis://` URL (credentials and
/// database, with a placeholder host) that the master connection uses; `None` for any other
/// address.
pub(crate) fn parse(url: &str) -> Result<Option<(Sentinels, String)>, OpenError> {
    let Some(rest) = url.strip_prefix("redis+sentinel://") else {
        return Ok(None);
    };
    let refuse = |reason: &str| {
        OpenError::RedisUrl(format!(
            "{}: {reason} (redis+sentinel://[user:pass@]host:port[,host:port...]/MASTER_NAME[/db])",
            super::super::spec::redact(url)
        ))
    };
    let (credentials, rest) = match rest.rsplit_once('@') {
        Some((credentials, rest)) => (Some(credentials), rest),
        None => (None, rest),
    };
    let (hosts, path) = rest
        .split_once('/')
        .ok_or_else(|| refuse("no master name"))?;
    let (master, db) = match path.split_once('/') {
        Some((master, db)) => (master, Some(db)),
        None => (path, None),
    };
    if master.is_empty() {
        return Err(refuse("no master name"));
    }
    let mut addresses = Vec::new();
    for host in hosts.split(',') {
        let (name, port) = host
            .rsplit_once(':')
            .ok_or_else(|| refuse(&format!("sentinel {host} has no port")))?;
        let port = port
            .parse::<u16>()
            .map_err(|_| refuse(&format!("sentinel {host}: bad port")))?;
        if name.is_empty() {
            return Err(refuse(&format!("sentinel {host} has no host")));
        }
        addresses.push((name.trim_matches(['[', ']']).to_string(), port));
    }
    let credentials = credentials.map_or(String::new(), |credentials| format!("{credentials}@"));
    let db = db.map_or(String::new(), |db| format!("/{db}"));
    Ok(Some((
        Sentinels {
            addresses,
            master: master.to_string(),
        },
        format!("redis://{credentials}sentinel-master{db}"),
    )))
}

impl Sentinels {
    /// Where the master is now, by the first sentinel that answers with an address.
    pub(super) async fn master_address(&self, timeout: Duration) -> Result<(String, u16), String> {
        let mut failures = Vec::new();
        for (host, port) in &self.addresses {
            match tokio::time::timeout(timeout, self.ask(host, *port)).await {
                Ok(Ok(Some(address))) => return Ok(address),
                Ok(Ok(None)) => failures.push(format!(
                    "{host}:{port} does not know master {}",
                    self.master
                )),
                Ok(Err(error)) => failures.push(format!("{host}:{port}: {error}")),
                Err(_) => failures.push(format!("{host}:{port}: no answer within {timeout:?}")),
            }
        }
        Err(format!(
            "no sentinel named the master: {}",
            failures.join("; ")
        ))
    }

    async fn ask(&self, host: &str, port: u16) -> Result<Option<(String, u16)>, String> {
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|error| error.to_string())?;
        let reply: Value = one_request(
            stream,
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(&self.master)
                .clone(),
        )
        .await?;
        match reply {
            Value::Nil => Ok(None),
            Value::Array(items) => match items.as_slice() {
                [host, port] => {
                    let host: String =
                        redis::from_redis_value_ref(host).map_err(|e| e.to_string())?;
                    let port: String =
                        redis::from_redis_value_ref(port).map_err(|e| e.to_string())?;
                    let port = port.parse().map_err(|_| format!("bad port {port:?}"))?;
                    Ok(Some((host, port)))
                }
                _ => Err(format!("unexpected answer {items:?}")),
            },
            other => Err(format!("unexpected answer {other:?}")),
        }
    }

    /// For descriptions: the master's name and the sentinels.
    pub(super) fn describe(&self) -> String {
        let sentinels: Vec<String> = self
            .addresses
            .iter()
            .map(|(host, port)| format!("{host}:{port}"))
            .collect();
        format!(
            "sentinel master {} via {}",
            self.master,
            sentinels.join(",")
        )
    }
}

/// Send one command on a fresh connection over `stream` and return its reply.
async fn one_request(stream: tokio::net::TcpStream, command: redis::Cmd) -> Result<Value, String> {
    let (mut connection, driver) = MultiplexedConnection::new_with_config(
        &RedisConnectionInfo::default(),
        stream,
        AsyncConnectionConfig::new(),
    )
    .await
    .map_err(|error| error.to_string())?;
    let driver = tokio::spawn(driver);
    let reply = command
        .query_async::<Value>(&mut connection)
        .await
        .map_err(|error| error.to_string());
    driver.abort();
    reply
}

/// Whether the server behind `connection` is a master (`ROLE`'s first element).
pub(super) async fn is_master(connection: &mut MultiplexedConnection) -> Result<bool, String> {
    let role: Value = redis::cmd("ROLE")
        .query_async(connection)
        .await
        .map_err(|error| error.to_string())?;
    match role {
        Value::Array(items) => Ok(matches!(
            items.first(),
            Some(Value::BulkString(role)) if role == b"master"
        )),
        other => Err(format!("ROLE answered {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_addresses_name_their_sentinels_master_and_database() {
        let (sentinels, plain) = parse("redis+sentinel://a:26379,b:26380/mymaster/2")
            .unwrap()
            .unwrap();
        assert_eq!(
            sentinels.addresses,
            [("a".to_string(), 26379), ("b".to_string(), 26380)]
        );
        assert_eq!(sentinels.master, "mymaster");
        assert_eq!(plain, "redis://sentinel-master/2");
        let (_, plain) = parse("redis+sentinel://u:p@a:1/m").unwrap().unwrap();
        assert_eq!(plain, "redis://u:p@sentinel-master");
        assert!(parse("redis://a:1").unwrap().is_none());
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
}
