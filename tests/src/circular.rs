//! [`CircularClusterNode`]: a fake Redis Cluster node that claims every slot and answers every
//! command on a key with `MOVED` to itself — a misconfigured cluster whose redirects never end,
//! which no real `redis-server` can be made to be. It speaks just enough RESP for that.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The fake node, on a free local port; its threads end with the test process.
pub struct CircularClusterNode {
    port: u16,
    redirects: Arc<AtomicU64>,
}

impl CircularClusterNode {
    /// Start one.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the fake node");
        let port = listener.local_addr().expect("its address").port();
        let redirects = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&redirects);
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                let Ok(connection) = connection else { continue };
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || serve(connection, port, &counter));
            }
        });
        Self { port, redirects }
    }

    /// Its cluster address.
    pub fn url(&self) -> String {
        format!("redis+cluster://127.0.0.1:{}", self.port)
    }

    /// `MOVED` replies sent so far.
    pub fn redirects(&self) -> u64 {
        self.redirects.load(Ordering::Acquire)
    }
}

fn serve(mut connection: TcpStream, port: u16, redirects: &AtomicU64) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some((command, used)) = parse_command(&buffer) {
            buffer.drain(..used);
            let reply = answer(&command, port, redirects);
            if connection.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
        match connection.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
}

fn answer(command: &[Vec<u8>], port: u16, redirects: &AtomicU64) -> String {
    let name = command
        .first()
        .map(|name| String::from_utf8_lossy(name).to_ascii_uppercase())
        .unwrap_or_default();
    let argument = |index: usize| {
        command
            .get(index)
            .map(|arg| String::from_utf8_lossy(arg).to_ascii_uppercase())
            .unwrap_or_default()
    };
    match name.as_str() {
        "CLUSTER" if argument(1) == "SLOTS" => format!(
            "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:{port}\r\n$4\r\nfake\r\n"
        ),
        "MULTI" | "CLIENT" | "HELLO" | "SELECT" | "AUTH" | "ASKING" => "+OK\r\n".to_string(),
        "PING" => "+PONG\r\n".to_string(),
        "EXEC" => "-EXECABORT Transaction discarded because of previous errors.\r\n".to_string(),
        _ => {
            redirects.fetch_add(1, Ordering::AcqRel);
            format!("-MOVED 0 127.0.0.1:{port}\r\n")
        }
    }
}

/// One `*N` array of bulk strings from the front of `buffer`, and the bytes it took; `None`
/// until it has all arrived.
fn parse_command(buffer: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    let (count, mut at) = parse_line(buffer, 0, b'*')?;
    let mut parts = Vec::with_capacity(count);
    for _ in 0..count {
        let (length, start) = parse_line(buffer, at, b'$')?;
        let end = start.checked_add(length)?;
        if buffer.len() < end + 2 {
            return None;
        }
        parts.push(buffer[start..end].to_vec());
        at = end + 2;
    }
    Some((parts, at))
}

/// The number after `marker` on the line at `at`, and where the next line starts.
fn parse_line(buffer: &[u8], at: usize, marker: u8) -> Option<(usize, usize)> {
    if *buffer.get(at)? != marker {
        return None;
    }
    let end = at + buffer[at..].windows(2).position(|pair| pair == b"\r\n")?;
    let number = std::str::from_utf8(&buffer[at + 1..end])
        .ok()?
        .parse()
        .ok()?;
    Some((number, end + 2))
}
