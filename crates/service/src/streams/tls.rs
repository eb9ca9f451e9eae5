//! The certificates log streams trust when they reach a receiver over TLS (a webhook's `https://`
//! URL, syslog with `tls`): the Mozilla root certificates, and the operator's own certificate
//! authorities if the server is given some (`--streams-ca-file`), for receivers whose
//! certificates a company's private CA signed. Client certificates are not sent.

use std::sync::Arc;

use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// What a server's log streams trust, for syslog's TLS and for the webhooks' HTTP client.
#[derive(Clone)]
pub struct StreamTls {
    config: Arc<ClientConfig>,
    /// The operator's certificate authorities, beside the Mozilla roots.
    extra: Arc<[CertificateDer<'static>]>,
}

impl std::fmt::Debug for StreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTls")
            .field("extra_roots", &self.extra.len())
            .finish()
    }
}

impl Default for StreamTls {
    /// The Mozilla roots alone.
    fn default() -> Self {
        StreamTls::new(None).expect("no extra roots to refuse")
    }
}

impl StreamTls {
    /// Trusts the Mozilla roots and each certificate of `extra_ca_pem` (PEM, one or more
    /// `BEGIN CERTIFICATE` blocks). A PEM text without a certificate, or with one that does not
    /// parse, is refused: an operator who gives a file means it to be used.
    pub fn new(extra_ca_pem: Option<&[u8]>) -> Result<StreamTls, String> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let mut extra = Vec::new();
        if let Some(pem) = extra_ca_pem {
            for (i, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
                let cert = cert.map_err(|e| format!("certificate {}: {e}", i + 1))?;
                roots
                    .add(cert.clone())
                    .map_err(|e| format!("certificate {}: {e}", i + 1))?;
                extra.push(cert);
            }
            if extra.is_empty() {
                return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
            }
        }
        // ring, the provider reqwest's rustls already uses here. rustls 0.23.48 marks it
        // deprecated for lacking post-quantum key exchange; aws-lc-rs has that, at the price of a
        // second provider and a C build, which this project does not take for log streams.
        #[allow(deprecated)]
        let provider = rustls::crypto::ring::default_provider();
        let config = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(StreamTls {
            config: Arc::new(config),
            extra: extra.into(),
        })
    }

    /// A connector for syslog's TLS.
    pub fn connector(&self) -> TlsConnector {
        TlsConnector::from(self.config.clone())
    }

    /// The operator's certificate authorities (DER), for the webhooks' HTTP client.
    pub fn extra_roots(&self) -> &[CertificateDer<'static>] {
        &self.extra
    }
}

/// The name a receiver's certificate must carry: a host name, or an IP address (`[::1]` as
/// `::1`).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string())
        .map_err(|e| format!("{host} cannot be checked against a certificate: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_a_certificate_is_refused() {
        let refused = StreamTls::new(Some(b"not a certificate\n")).unwrap_err();
        assert!(refused.contains("no PEM certificate"), "{refused}");
        let broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(StreamTls::new(Some(broken)).is_err());
        assert!(StreamTls::default().extra_roots().is_empty());
    }

    #[test]
    fn hosts_and_addresses_are_server_names() {
        assert!(server_name("logs.example.com").is_ok());
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(server_name("bad host").is_err());
    }
}
