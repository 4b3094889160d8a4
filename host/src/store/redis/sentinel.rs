//! `redis+sentinel://` addresses: the master is found through Redis Sentinel, on every connect.
//!
//! `redis+sentinel://[user:pass@]sentinel1:port,sentinel2:port/MASTER_NAME[/db]`
//! (`rediss+sentinel://` for TLS: the sentinels and the master are both reached over TLS,
//! verified with the same trust and client certificate, as a deployment with
//! `tls-replication yes` serves them). Each new
//! connection asks the sentinels in turn (`SENTINEL get-master-addr-by-name`) where the master
//! is now, connects there, and checks with `ROLE` that it really is a master (during a failover
//! a sentinel can still name the old one). The store retires its connection when it breaks and
//! when a server answers `READONLY` (a demoted master), so the next call finds the promoted
//! replica without restarting the host. The user and password are the master's; the sentinels
//! are asked without credentials.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo, Value};

use super::slots::NodeAddress;
use super::tls::Tls;

/// The sentinels to ask, and the master they watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sentinels {
    /// Sentinel addresses, asked in this order.
    addresses: Vec<NodeAddress>,
    /// The master's name in the sentinels' configuration.
    master: String,
}

impl Sentinels {
    /// The sentinels at `addresses`, watching the master they call `master`.
    pub(crate) fn new(addresses: Vec<NodeAddress>, master: String) -> Self {
        Self { addresses, master }
    }

    /// Where the master is now, by the first sentinel that answers with an address (each
    /// asked over TLS when `tls` is given).
    pub(super) async fn master_address(
        &self,
        timeout: Duration,
        tls: Option<&Tls>,
    ) -> Result<(String, u16), String> {
        let mut failures = Vec::new();
        for sentinel in &self.addresses {
            let (host, port) = (&sentinel.host, sentinel.port);
            match tokio::time::timeout(timeout, self.ask(host, port, tls)).await {
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

    async fn ask(
        &self,
        host: &str,
        port: u16,
        tls: Option<&Tls>,
    ) -> Result<Option<(String, u16)>, String> {
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|error| error.to_string())?;
        let mut command = redis::cmd("SENTINEL");
        command.arg("get-master-addr-by-name").arg(&self.master);
        let reply = match tls {
            Some(tls) => one_request(tls.connect(host, stream).await?, command).await?,
            None => one_request(stream, command).await?,
        };
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
        let sentinels: Vec<String> = self.addresses.iter().map(ToString::to_string).collect();
        format!(
            "sentinel master {} via {}",
            self.master,
            sentinels.join(",")
        )
    }
}

/// Send one command on a fresh connection over `stream` and return its reply.
async fn one_request<S>(stream: S, command: redis::Cmd) -> Result<Value, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
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
