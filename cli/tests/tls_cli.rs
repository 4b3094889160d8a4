//! The CLI over `rediss://`: certificate options, mutual TLS, credentials never echoed.

use agent_memory_tests::TestPki;
use agent_memory_tests::cli::{Cli, stderr};

#[test]
fn the_cli_speaks_tls_with_its_certificate_options() {
    let pki = TestPki::generate();
    let (_server, port) = pki.start_server(true);
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

#[test]
fn a_tls_address_for_a_plain_server_says_which_scheme_the_port_takes() {
    let pki = TestPki::generate();
    let plain = agent_memory_tests::RedisServer::start();
    let cli = Cli::new(env!("CARGO_BIN_EXE_agent-memory"));
    let url = format!("rediss://127.0.0.1:{}", plain.port());
    let output = cli.run(&[
        "--store",
        &url,
        "--tls-ca",
        &pki.arg("ca.pem"),
        "add",
        "s",
        "hello",
    ]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("speaking TLS") && message.contains("redis://"),
        "{message}"
    );
    assert!(!message.contains("next connect attempt"), "{message}");
    // Nothing was written through the plain port either.
    let exists: bool = redis::Commands::exists(&mut plain.connection(), "ai:memory:s").unwrap();
    assert!(!exists);
}
