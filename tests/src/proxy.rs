//! [`FaultProxy`]: a TCP proxy in front of a real Redis for the faults a real server cannot be
//! made to show on demand: a connection that dies right after `EXEC` was sent (or right
//! before), a connection that goes silent while new ones work (half-open), and replies that
//! are not RESP at all. Everything else in the fault matrix uses real `redis-server` processes.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to traffic from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Pass everything through.
    Forward,
    /// Pass a request holding `EXEC` to the server, then cut the client's connection before
    /// the reply comes back: the transaction applied, the client cannot know.
    DropAfterExec,
    /// Cut the client's connection instead of passing on a request holding `EXEC`: nothing
    /// applied, the client cannot know that either.
    DropBeforeExec,
    /// Answer every request with bytes that are not RESP.
    Garbage,
}

/// A proxy on a free local port in front of `target`.
pub struct FaultProxy {
    port: u16,
    mode: Arc<Mutex<ProxyMode>>,
    accepted: Arc<AtomicU64>,
    /// Connections told to go silent (set by [`FaultProxy::silence_existing`]).
    connections: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Start a proxy to the Redis at `target_port` on 127.0.0.1.
    pub fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let proxy = Self {
            port,
            mode: Arc::new(Mutex::new(ProxyMode::Forward)),
            accepted: Arc::new(AtomicU64::new(0)),
            connections: Arc::new(Mutex::new(Vec::new())),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (mode, accepted, connections, stop) = (
            Arc::clone(&proxy.mode),
            Arc::clone(&proxy.accepted),
            Arc::clone(&proxy.connections),
            Arc::clone(&proxy.stop),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(client) = client else { continue };
                accepted.fetch_add(1, Ordering::AcqRel);
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let silenced = Arc::new(AtomicBool::new(false));
                connections
                    .lock()
                    .expect("proxy lock")
                    .push(Arc::clone(&silenced));
                relay(client, server, Arc::clone(&mode), silenced);
            }
        });
        proxy
    }

    /// The proxy's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// What to do from now on.
    pub fn set_mode(&self, mode: ProxyMode) {
        *self.mode.lock().expect("proxy lock") = mode;
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Acquire)
    }

    /// Make every connection open now go silent in both directions, as a peer that vanished
    /// without closing (half-open); new connections pass through as usual.
    pub fn silence_existing(&self) {
        for silenced in self.connections.lock().expect("proxy lock").iter() {
            silenced.store(true, Ordering::Release);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copy both ways between `client` and `server`, applying the mode to requests.
fn relay(
    client: TcpStream,
    server: TcpStream,
    mode: Arc<Mutex<ProxyMode>>,
    silenced: Arc<AtomicBool>,
) {
    let cut = Arc::new(AtomicBool::new(false));
    let (Ok(client_reader), Ok(server_reader)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    {
        let (cut, silenced) = (Arc::clone(&cut), Arc::clone(&silenced));
        let mut client = client.try_clone().expect("clone");
        std::thread::spawn(move || {
            // Replies: server -> client.
            let mut reader = server_reader;
            let mut buffer = vec![0u8; 64 * 1024];
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 || cut.load(Ordering::Acquire) {
                    break;
                }
                if silenced.load(Ordering::Acquire) {
                    continue;
                }
                if client.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            let _ = client.shutdown(Shutdown::Both);
        });
    }
    std::thread::spawn(move || {
        // Requests: client -> server.
        let mut reader = client_reader;
        let mut server = server;
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(n) = reader.read(&mut buffer) {
            if n == 0 {
                break;
            }
            let chunk = &buffer[..n];
            if silenced.load(Ordering::Acquire) {
                continue;
            }
            let current = *mode.lock().expect("proxy lock");
            let holds_exec = chunk.windows(6).any(|window| window == b"EXEC\r\n");
            match current {
                ProxyMode::DropAfterExec if holds_exec => {
                    cut.store(true, Ordering::Release);
                    let _ = server.write_all(chunk);
                    // Let the server read and run it before the connection goes.
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
                ProxyMode::DropBeforeExec if holds_exec => {
                    cut.store(true, Ordering::Release);
                    break;
                }
                ProxyMode::Garbage => {
                    let _ = reader.write_all(b"?this is not RESP\r\n");
                    continue;
                }
                _ => {}
            }
            if server.write_all(chunk).is_err() {
                break;
            }
        }
        let _ = server.shutdown(Shutdown::Both);
        let _ = reader.shutdown(Shutdown::Both);
    });
}

/// A server that accepts connections, reads what it is sent, and never answers: a Redis that
/// hangs during the handshake. Counts the connections it accepted.
pub struct SilentServer {
    port: u16,
    accepted: Arc<AtomicU64>,
}

impl SilentServer {
    /// Start one on a free local port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the silent server");
        let port = listener.local_addr().expect("its address").port();
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                let Ok(mut connection) = connection else {
                    continue;
                };
                counter.fetch_add(1, Ordering::AcqRel);
                std::thread::spawn(move || {
                    let mut sink = [0u8; 4096];
                    while matches!(connection.read(&mut sink), Ok(n) if n > 0) {}
                });
            }
        });
        Self { port, accepted }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Acquire)
    }
}
