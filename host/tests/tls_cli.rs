//! The CLI over `rediss://`: certificate options, mutual TLS, credentials never echoed.

use agent_memory_tests::cli::{Cli, stderr};
use agent_memory_tests::{RedisServer, TestPki, free_port};

#[test]
fn the_cli_speaks_tls_with_its_certificate_options() {
    let pki = TestPki::generate();
    let port = free_port();
    let (port_arg, cert, key, ca) = (
        port.to_string(),
        pki.arg("server.pem"),
        pki.arg("server.key"),
        pki.arg("ca.pem"),
    );
    let _server = RedisServer::start_with(&[
        "--tls-port",
        &port_arg,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "yes",
    ]);
    let cli = Cli::new(env!("CARGO_BIN_EXE_agent-memory"));
    let url = format!("rediss://user:secret@127.0.0.1:{port}");
    let tls = [
        "--tls-ca",
        &pki.arg("ca.pem"),
        "--tls-cert",
        &pki.arg("client.pem"),
        "--tls-key",
        &pki.arg("client.key"),
    ];
    let mut args = vec!["--store", url.as_str()];
    args.extend(tls);
    args.extend(["add", "s", "hello"]);
    let output = cli.run(&args);
    // The server has no password set: AUTH fails, and says so without the password.
    let refused = stderr(&output);
    assert!(!output.status.success());
    assert!(!refused.contains("secret"), "{refused}");
    let url = format!("rediss://127.0.0.1:{port}");
    let mut args = vec!["--store", url.as_str()];
    args.extend(tls);
    args.extend(["add", "s", "hello"]);
    let output = cli.run(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    // Without the client certificate the server refuses the handshake: one clear line.
    let output = cli.run(&[
        "--store",
        url.as_str(),
        "--tls-ca",
        &pki.arg("ca.pem"),
        "get",
        "s",
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("Certificate"),
        "{}",
        stderr(&output)
    );
}
