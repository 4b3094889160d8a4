//! Certificates for the TLS tests, made with the `openssl` command line: a CA, a server
//! certificate it signed for `127.0.0.1` and `localhost` (also a client certificate, as a TLS
//! cluster's nodes need), a client certificate it signed, and
//! a second CA that signed nothing here (the wrong one to trust). Short-lived, in a temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{RedisServer, free_port};

/// The PEM files of one test PKI.
pub struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    /// Generate everything (P-256 keys: fast).
    pub fn generate() -> Self {
        let pki = Self {
            dir: tempfile::tempdir().expect("a temp dir for certificates"),
        };
        pki.ca("ca", "agent-memory test CA");
        pki.ca("other-ca", "a CA nobody here trusts");
        pki.signed(
            "server",
            "localhost",
            // clientAuth too: cluster nodes present it to each other on a TLS cluster bus.
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
        );
        pki.signed(
            "client",
            "agent-memory test client",
            "extendedKeyUsage=clientAuth\n",
        );
        pki
    }

    /// A `redis-server` with TLS on a port of its own (returned with it; the server's plain
    /// port stays for the test's own checks), serving this PKI's server certificate and, when
    /// `require_client_certificates`, accepting only clients this CA signed.
    pub fn start_server(&self, require_client_certificates: bool) -> (RedisServer, u16) {
        let port = free_port();
        let args = self.server_args(port, require_client_certificates);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        (RedisServer::start_with(&args), port)
    }

    /// The `redis-server` arguments that serve TLS on `port` with this PKI's server
    /// certificate (and, when `require_client_certificates`, only to clients this CA signed).
    pub fn server_args(&self, port: u16, require_client_certificates: bool) -> Vec<String> {
        let auth = if require_client_certificates {
            "yes"
        } else {
            "no"
        };
        [
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &self.arg("server.pem"),
            "--tls-key-file",
            &self.arg("server.key"),
            "--tls-ca-cert-file",
            &self.arg("ca.pem"),
            "--tls-auth-clients",
            auth,
        ]
        .map(String::from)
        .to_vec()
    }

    /// The file `name` (`ca.pem`, `server.key`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `path` as a string, for command lines and URLs.
    pub fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn ca(&self, name: &str, subject: &str) {
        openssl(
            self.dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={subject}"),
            ],
        );
    }

    fn signed(&self, name: &str, subject: &str, extensions: &str) {
        std::fs::write(self.path(&format!("{name}.ext")), extensions).expect("writing extensions");
        openssl(
            self.dir.path(),
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={subject}"),
            ],
        );
        openssl(
            self.dir.path(),
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl (the TLS tests need it)");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
