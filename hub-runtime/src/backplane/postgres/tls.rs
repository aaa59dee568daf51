//! TLS to PostgreSQL through rustls (ring), with libpq's `sslmode` meanings: `disable` never
//! encrypts; `prefer` (the default) and `require` encrypt without checking the server's
//! certificate; `verify-ca` checks it was issued by one of
//! [`PostgresOptions::tls_roots`](super::PostgresOptions::tls_roots); `verify-full` checks the
//! host name too.
//!
//! tokio-postgres itself knows only `disable`, `prefer` and `require`: the URL is given to it
//! with `verify-ca` and `verify-full` read as `require`, and the verification is this
//! module's.

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use tokio_rustls::rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verify {
    /// Nothing (`disable`, `prefer`, `require`): encryption only, as libpq.
    Nothing,
    /// The issuer (`verify-ca`).
    Issuer,
    /// The issuer and the host name (`verify-full`).
    IssuerAndName,
}

/// Reads `sslmode` from a connection string (URL or `key=value` form); returns the string for
/// tokio-postgres (`verify-ca` and `verify-full` become `require`) and what to verify.
pub(super) fn read_sslmode(url: &str) -> (String, Verify) {
    const KEY: &str = "sslmode=";
    let mut out = String::with_capacity(url.len());
    let mut verify = Verify::Nothing;
    let mut rest = url;
    while let Some(at) = rest.find(KEY) {
        let value_start = at + KEY.len();
        out.push_str(&rest[..value_start]);
        let tail = &rest[value_start..];
        let end = tail
            .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let value = tail[..end].trim_matches('\'');
        match value {
            "verify-ca" => {
                verify = Verify::Issuer;
                out.push_str("require");
            }
            "verify-full" => {
                verify = Verify::IssuerAndName;
                out.push_str("require");
            }
            _ => {
                verify = Verify::Nothing;
                out.push_str(&tail[..end]);
            }
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    (out, verify)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS connector for `verify`, trusting `roots` (required to verify).
pub(super) fn connector(verify: Verify, roots: &[CertificateDer<'static>]) -> Result<MakeRustlsConnect, String> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::Nothing => Arc::new(WithoutName { provider, chain: None }),
        Verify::Issuer | Verify::IssuerAndName => {
            if roots.is_empty() {
                return Err("sslmode=verify-ca and verify-full need PostgresOptions::tls_roots".into());
            }
            let mut store = rustls::RootCertStore::empty();
            for root in roots {
                store
                    .add(root.clone())
                    .map_err(|e| format!("a TLS root certificate is unusable: {e}"))?;
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| e.to_string())?;
            if verify == Verify::Issuer {
                Arc::new(WithoutName {
                    provider,
                    chain: Some(webpki),
                })
            } else {
                webpki
            }
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `require` (no `chain`: any certificate) and `verify-ca` (the chain must lead to a trusted
/// root; the name is not checked). The handshake's signatures are checked either way.
#[derive(Debug)]
struct WithoutName {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
}

impl ServerCertVerifier for WithoutName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // The name is checked last, once the chain was found valid.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_read_and_rewritten() {
        assert_eq!(
            read_sslmode("postgres://u@h/db?sslmode=verify-full&application_name=x"),
            (
                "postgres://u@h/db?sslmode=require&application_name=x".to_string(),
                Verify::IssuerAndName
            )
        );
        assert_eq!(
            read_sslmode("host=h sslmode=verify-ca user=u"),
            ("host=h sslmode=require user=u".to_string(), Verify::Issuer)
        );
        assert_eq!(
            read_sslmode("postgres://h/db?sslmode=require"),
            ("postgres://h/db?sslmode=require".to_string(), Verify::Nothing)
        );
        assert_eq!(read_sslmode("postgres://h/db").1, Verify::Nothing);
        assert!(connector(Verify::IssuerAndName, &[]).is_err());
        assert!(connector(Verify::Nothing, &[]).is_ok());
    }
}
