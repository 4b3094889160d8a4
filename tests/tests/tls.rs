//! `rediss://`: TLS to a real `redis-server` with certificates the test makes, verified always;
//! a server that requires client certificates; the Python original on the same TLS server;
//! sentinels over TLS (`rediss+sentinel://`) verified the same way.

use agent_memory::{
    Memory, Message, StoreSpec, store::OpenError, store::RedisOptions, store::TlsOptions,
};
use agent_memory_tests::{Deployment, Kind, PythonOriginal, TestPki, expect_stored, texts};
use serde_json::json;

fn options(ca: Option<std::path::PathBuf>, client: Option<(&TestPki, &str)>) -> RedisOptions {
    RedisOptions {
        tls: TlsOptions {
            ca_file: ca,
            cert_file: client.map(|(pki, name)| pki.path(&format!("{name}.pem"))),
            key_file: client.map(|(pki, name)| pki.path(&format!("{name}.key"))),
        },
        ..RedisOptions::default()
    }
}

fn memory(url: &str, options: RedisOptions) -> Memory {
    Memory::builder()
        .store(StoreSpec::parse(url).unwrap())
        .redis_options(options)
        .build()
        .unwrap()
}

/// Write one message through `url` and expect it refused as `unavailable` (nothing sent);
/// the reason, for the caller's checks.
async fn write_is_unavailable(url: &str, options: RedisOptions) -> String {
    let outcome = memory(url, options)
        .add_message("s", Message::user("x"))
        .await
        .unwrap();
    let agent_memory::WriteOutcome::Failed(error) = outcome else {
        panic!("{url}: stored over an unverified or plain connection");
    };
    assert!(
        matches!(error, agent_memory::StoreError::Unavailable(_)),
        "{url}: {error}"
    );
    error.to_string()
}

#[tokio::test]
async fn sessions_go_over_verified_tls_and_the_python_original_reads_them_there() {
    let pki = TestPki::generate();
    let (_server, port) = pki.start_server(false);
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("rediss://{host}:{port}");
        let memory = memory(&url, options(Some(pki.path("ca.pem")), None));
        assert!(memory.store().describe().contains("(TLS)"));
        expect_stored(
            memory
                .add_message(host, Message::user("over tls"))
                .await
                .unwrap(),
        );
        assert_eq!(
            texts(&memory.get_context(host).await.unwrap()),
            ["over tls"]
        );
    }
    // redis-py's TLS client, verifying with the same CA.
    let python = PythonOriginal::new(&format!(
        "rediss://127.0.0.1:{port}/0?ssl_ca_certs={}&ssl_cert_reqs=required",
        pki.arg("ca.pem")
    ));
    assert_eq!(
        python.get("127.0.0.1"),
        json!([{"role": "user", "content": "over tls"}])
    );
    python.add("from-python", &[r#"{"role": "user", "content": "hé"}"#]);
    let memory = memory(
        &format!("rediss://127.0.0.1:{port}"),
        options(Some(pki.path("ca.pem")), None),
    );
    assert_eq!(
        texts(&memory.get_context("from-python").await.unwrap()),
        ["hé"]
    );
}

#[tokio::test]
async fn a_server_the_ca_did_not_sign_is_refused_and_nothing_is_sent() {
    let pki = TestPki::generate();
    let (server, port) = pki.start_server(false);
    // Trusting another CA, or the public roots: the server's certificate does not verify.
    for ca in [Some(pki.path("other-ca.pem")), None] {
        let url = format!("rediss://127.0.0.1:{port}");
        let error = write_is_unavailable(&url, options(ca, None)).await;
        assert!(error.contains("certificate"), "{error}");
    }
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut server.connection())
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    // A name the certificate does not carry fails the same way.
    let memory = memory(
        &format!("rediss://127.0.0.2:{port}"),
        options(Some(pki.path("ca.pem")), None),
    );
    let context = memory.get_context("s").await.unwrap();
    assert!(context.degraded.is_some());
}

#[tokio::test]
async fn sentinels_and_their_master_over_tls_are_verified_or_refused_with_nothing_sent() {
    let deployment = Deployment::start(Kind::TlsSentinel);
    let pki = deployment.pki().expect("a TLS deployment");
    // Trusting another CA: no sentinel's certificate verifies, so no master is named.
    let untrusted = options(Some(pki.path("other-ca.pem")), None);
    let error = write_is_unavailable(deployment.url(), untrusted).await;
    assert!(error.contains("certificate"), "{error}");
    // Plain sentinel queries to the TLS ports get no answer a client could use.
    let plain = deployment.url().replacen("rediss+", "redis+", 1);
    write_is_unavailable(&plain, options(Some(pki.path("ca.pem")), None)).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut deployment.masters()[0].connection())
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    // Trusting the CA: served, over TLS, by the master the sentinels name.
    let memory = deployment.memory(agent_memory::Settings::default());
    assert!(memory.store().describe().contains("(TLS)"));
    expect_stored(memory.add_message("s", Message::user("x")).await.unwrap());
}

#[tokio::test]
async fn a_server_that_requires_client_certificates_gets_one_or_refuses() {
    let pki = TestPki::generate();
    let (_server, port) = pki.start_server(true);
    let url = format!("rediss://127.0.0.1:{port}");
    let without = memory(&url, options(Some(pki.path("ca.pem")), None));
    let context = without.get_context("s").await.unwrap();
    assert!(
        context.degraded.is_some(),
        "served without a client certificate"
    );
    let with = memory(
        &url,
        options(Some(pki.path("ca.pem")), Some((&pki, "client"))),
    );
    expect_stored(
        with.add_message("s", Message::user("mutual"))
            .await
            .unwrap(),
    );
    assert_eq!(texts(&with.get_context("s").await.unwrap()), ["mutual"]);
}

#[test]
fn bad_certificate_files_and_insecure_addresses_are_refused_when_the_store_opens() {
    let pki = TestPki::generate();
    let open = |url: &str, options: RedisOptions| {
        Memory::builder()
            .store(StoreSpec::parse(url).unwrap())
            .redis_options(options)
            .build()
            .map(|_| ())
    };
    let not_pem = pki.path("server.ext");
    let error = open("rediss://127.0.0.1:1", options(Some(not_pem), None)).unwrap_err();
    assert!(error.to_string().contains("TLS"), "{error}");
    let mut only_cert = options(None, None);
    only_cert.tls.cert_file = Some(pki.path("client.pem"));
    assert!(open("rediss://127.0.0.1:1", only_cert).is_err());
    assert!(matches!(
        StoreSpec::parse("rediss://127.0.0.1:1/#insecure"),
        Err(OpenError::Tls(_))
    ));
}
