//! TLS for `rediss://` addresses: rustls (the ring provider), with certificate verification
//! always on.
//!
//! The TLS stream is made here and handed to redis-rs like a TCP stream, so a TLS connection is
//! connected, timed out, retired and rebuilt exactly as a plain one. Trust is the public web
//! roots (`webpki-roots`) plus, or instead with [`TlsOptions::ca_file`], the CA a deployment
//! names; a client certificate and key ([`TlsOptions::cert_file`], [`TlsOptions::key_file`])
//! answer a server that requires one (`tls-auth-clients yes`). There is no switch to turn
//! verification off: a `rediss://…#insecure` address is refused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::store::OpenError;

/// Certificates for TLS connections (`rediss://`). All paths are PEM files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Trust this CA (a PEM file of one or more certificates) instead of the public web roots:
    /// what a deployment with its own CA sets.
    pub ca_file: Option<PathBuf>,
    /// The client certificate (chain) to present, for servers that require one (mutual TLS).
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub key_file: Option<PathBuf>,
}

/// A ready TLS client: its configuration, loaded once when the store is opened.
#[derive(Clone)]
pub(super) struct Tls {
    connector: TlsConnector,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// The client `options` describe; every file is read and checked now, so a wrong path or a
    /// damaged certificate is an error when the store is opened, not at the first call.
    pub(super) fn new(options: &TlsOptions) -> Result<Self, OpenError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| tls_error(format!("TLS setup: {error}")))?
            .with_root_certificates(roots(options.ca_file.as_deref())?);
        let config = match (&options.cert_file, &options.key_file) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(certificates(cert)?, private_key(key)?)
                .map_err(|error| {
                    tls_error(format!("client certificate {}: {error}", cert.display()))
                })?,
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(tls_error(
                    "a client certificate needs both its certificate and its key file".to_string(),
                ));
            }
        };
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// TLS over `stream` to `host` (a DNS name or an IP address, checked against the server's
    /// certificate).
    pub(super) async fn connect<S>(
        &self,
        host: &str,
        stream: S,
    ) -> Result<tokio_rustls::client::TlsStream<S>, String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(host.to_string())
            .map_err(|error| format!("{host} is not a name TLS can verify: {error}"))?;
        self.connector
            .connect(name, stream)
            .await
            .map_err(|error| format!("TLS handshake failed: {error}"))
    }
}

fn tls_error(reason: String) -> OpenError {
    OpenError::Tls(reason)
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, OpenError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for certificate in certificates(path)? {
                roots.add(certificate).map_err(|error| {
                    tls_error(format!("CA certificate in {}: {error}", path.display()))
                })?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, OpenError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|error| tls_error(format!("{}: {error}", path.display())))?;
    if certificates.is_empty() {
        return Err(tls_error(format!(
            "{}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certificates)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, OpenError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| {
        tls_error(format!(
            "{}: no usable private key: {error}",
            path.display()
        ))
    })
}
