//! TLS for `https://` and `wss://`, served directly (rustls; certificate and key from PEM files),
//! with the `tls` feature. Without it the accept loop's acceptor is a type with no values, so
//! the loop keeps one shape and serves plain TCP only.

#[cfg(feature = "tls")]
pub use imp::TlsConfig;

/// What the accept loop runs a TLS handshake with.
#[cfg(feature = "tls")]
pub(crate) type Acceptor = tokio_rustls::TlsAcceptor;

/// What the accept loop runs a TLS handshake with: without the `tls` feature, nothing (no
/// value of this type exists, so the loop's TLS branch is never taken).
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
pub(crate) enum Acceptor {}

#[cfg(not(feature = "tls"))]
impl Acceptor {
    /// Never called: there is no acceptor to call it on.
    pub(crate) async fn accept<IO>(&self, _io: IO) -> std::io::Result<IO> {
        match *self {}
    }
}

#[cfg(feature = "tls")]
mod imp {
    use std::path::Path;
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    use tokio_rustls::TlsAcceptor;

    /// A server certificate chain and its private key.
    ///
    /// ```no_run
    /// let tls = hub_runtime::server::TlsConfig::from_pem_files("cert.pem", "key.pem").unwrap();
    /// # let _ = tls;
    /// ```
    #[derive(Clone)]
    pub struct TlsConfig {
        pub(crate) acceptor: TlsAcceptor,
    }

    fn invalid(what: &str, e: impl std::fmt::Display) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what}: {e}"))
    }

    impl TlsConfig {
        /// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
        pub fn from_pem_files(certificate: impl AsRef<Path>, key: impl AsRef<Path>) -> std::io::Result<Self> {
            let certificate = certificate.as_ref();
            let certs = CertificateDer::pem_file_iter(certificate)
                .map_err(|e| invalid(&certificate.display().to_string(), e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(&certificate.display().to_string(), e))?;
            if certs.is_empty() {
                return Err(invalid(
                    &certificate.display().to_string(),
                    "no certificate in the file",
                ));
            }
            let key_path = key.as_ref();
            let key =
                PrivateKeyDer::from_pem_file(key_path).map_err(|e| invalid(&key_path.display().to_string(), e))?;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| invalid("TLS configuration", e))?
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .map_err(|e| invalid("certificate and key", e))?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(TlsConfig {
                acceptor: TlsAcceptor::from(Arc::new(config)),
            })
        }
    }

    impl std::fmt::Debug for TlsConfig {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("TlsConfig").finish_non_exhaustive()
        }
    }
}
