//! TLS client settings for HTTPS probes: one verifying against the system's trusted roots, one
//! that accepts any certificate (`verifyCertificate: false`). Both are built once and shared
//! by every HTTPS client.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The two TLS client configurations.
pub(super) struct TlsConfigs {
    /// Verifies certificates against the system's trusted roots.
    verifying: ClientConfig,
    /// Checks handshake signatures but trusts any certificate.
    accepting_any: ClientConfig,
}

impl TlsConfigs {
    /// Loads the system roots and builds both configurations.
    pub(super) fn load() -> Self {
        let provider = Arc::new(ring::default_provider());
        let builder = || {
            ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default protocol versions")
        };
        let verifying = builder()
            .with_root_certificates(system_roots())
            .with_no_client_auth();
        let accepting_any = builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth();
        Self {
            verifying: http1_only(verifying),
            accepting_any: http1_only(accepting_any),
        }
    }

    /// The configuration for a client that does (or does not) verify certificates.
    pub(super) fn config(&self, verify: bool) -> &ClientConfig {
        if verify {
            &self.verifying
        } else {
            &self.accepting_any
        }
    }
}

/// Probes speak HTTP/1.1 only (the client is built without HTTP/2).
fn http1_only(mut config: ClientConfig) -> ClientConfig {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// The system's trusted roots; with none, every verifying handshake fails (and says so).
fn system_roots() -> RootCertStore {
    let loaded = rustls_native_certs::load_native_certs();
    for err in &loaded.errors {
        tracing::warn!(%err, "while loading the system's trusted root certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        tracing::warn!(
            "no trusted root certificates found: HTTPS probes that verify certificates will fail"
        );
    }
    tracing::debug!(added, ignored, "loaded trusted root certificates");
    roots
}

/// Trusts any certificate chain, still checking that the server holds the key it presents.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
