//! [`TlsConnector`]: one rustls client configuration, used for every broker
//! connection, and the mapping of handshake failures to [`TlsError`].

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, CertificateError, PeerIncompatible};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;

use crate::error::TlsError;
use crate::verify::ClientCert;

/// Connects TCP streams to brokers over TLS. Build it once per client with
/// [`TlsConnector::from_keys`]; cloning is cheap.
///
/// `Debug` shows the settings, never key material.
#[derive(Clone)]
pub struct TlsConnector {
    pub(crate) config: Arc<rustls::ClientConfig>,
    pub(crate) client_key: Option<Arc<CertifiedKey>>,
    pub(crate) settings: Arc<Settings>,
}

/// What the connector was configured with, for messages and `Debug`.
#[derive(Debug)]
pub(crate) struct Settings {
    /// "TLSv1.3,TLSv1.2".
    pub(crate) versions: String,
    /// Where the client certificate came from ("entry \"x\" of path (key)").
    pub(crate) client_cert: Option<String>,
    /// Where the trust anchors came from.
    pub(crate) trust: String,
    pub(crate) hostname_verification: bool,
    pub(crate) certificate_verification: bool,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.settings;
        f.debug_struct("TlsConnector")
            .field("versions", &s.versions)
            .field("trust", &s.trust)
            .field("client_cert", &s.client_cert)
            .field("hostname_verification", &s.hostname_verification)
            .field("certificate_verification", &s.certificate_verification)
            .finish()
    }
}

impl TlsConnector {
    /// Shakes hands over `io` with the broker at `host` (a DNS name or an IP
    /// address, `[…]` brackets allowed). A DNS name is sent as SNI and checked
    /// against the certificate; an IP address is checked against its IP SANs.
    pub async fn connect<IO>(&self, host: &str, io: IO) -> Result<TlsStream<IO>, TlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            TlsError::config("bootstrap.servers", format!("{host:?} is neither a DNS name nor an IP address"))
        })?;
        // A per-connection resolver tells whether this broker asked for a client
        // certificate; the rest of the configuration (and the session cache) is shared.
        let probe = Arc::new(ClientCert { key: self.client_key.clone(), asked: AtomicBool::new(false) });
        let mut config = (*self.config).clone();
        config.client_auth_cert_resolver = probe.clone();
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, io)
            .await
            .map_err(|e| self.handshake_error(host, &e, probe.asked()))
    }

    /// Explains an error read from an established TLS stream, when it carries a
    /// TLS alert or protocol error (with TLS 1.3 a broker rejects the client
    /// certificate only after the client finished its handshake, so the alert
    /// arrives with the first response). `None` for plain socket errors.
    pub fn stream_error(&self, server: &str, e: &std::io::Error) -> Option<TlsError> {
        let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
        Some(self.map_rustls(server, inner, true))
    }

    fn handshake_error(&self, server: &str, e: &std::io::Error, asked: bool) -> TlsError {
        match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            Some(inner) => self.map_rustls(server, inner, asked),
            None => TlsError::HandshakeIo {
                server: server.to_owned(),
                source: Arc::new(std::io::Error::new(e.kind(), e.to_string())),
            },
        }
    }

    fn map_rustls(&self, server: &str, e: &rustls::Error, asked_for_cert: bool) -> TlsError {
        let server = server.to_owned();
        let have_cert = self.client_key.is_some();
        match e {
            rustls::Error::InvalidCertificate(c) => certificate_error(server, c),
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
                TlsError::ClientCertificateRequired { server }
            }
            rustls::Error::AlertReceived(AlertDescription::HandshakeFailure) if asked_for_cert && !have_cert => {
                TlsError::ClientCertificateRequired { server }
            }
            rustls::Error::AlertReceived(
                a @ (AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateRevoked
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::AccessDenied),
            ) if asked_for_cert => {
                if have_cert {
                    TlsError::ClientCertificateRejected { server, alert: format!("{a:?}") }
                } else {
                    TlsError::ClientCertificateRequired { server }
                }
            }
            rustls::Error::AlertReceived(AlertDescription::ProtocolVersion) => TlsError::NoCommonVersion {
                server,
                enabled: self.settings.versions.clone(),
                reason: "the broker answered with a protocol_version alert".into(),
            },
            rustls::Error::PeerIncompatible(
                p @ (PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
                | PeerIncompatible::ServerDoesNotSupportTls12Or13
                | PeerIncompatible::Tls12NotOffered
                | PeerIncompatible::Tls12NotOfferedOrEnabled
                | PeerIncompatible::Tls13RequiredForQuic
                | PeerIncompatible::SupportedVersionsExtensionRequired),
            ) => {
                TlsError::NoCommonVersion { server, enabled: self.settings.versions.clone(), reason: format!("{p:?}") }
            }
            other => TlsError::Handshake { server, reason: other.to_string() },
        }
    }
}

fn certificate_error(server: String, c: &CertificateError) -> TlsError {
    match c {
        CertificateError::UnknownIssuer => TlsError::UnknownCa { server },
        CertificateError::Expired => TlsError::CertificateExpired { server, detail: String::new() },
        CertificateError::ExpiredContext { time, not_after } => TlsError::CertificateExpired {
            server,
            detail: format!(" ({} ago)", duration_text(time.as_secs().saturating_sub(not_after.as_secs()))),
        },
        CertificateError::NotValidYet => TlsError::CertificateNotYetValid { server, detail: String::new() },
        CertificateError::NotValidYetContext { time, not_before } => TlsError::CertificateNotYetValid {
            server,
            detail: format!(" (for another {})", duration_text(not_before.as_secs().saturating_sub(time.as_secs()))),
        },
        CertificateError::NotValidForName => {
            TlsError::HostnameMismatch { host: server.clone(), server, detail: String::new() }
        }
        CertificateError::NotValidForNameContext { expected, presented } => TlsError::HostnameMismatch {
            host: server_name_text(expected),
            server,
            detail: format!(
                " (it is valid for {})",
                presented.iter().map(|p| unwrap_name(p)).collect::<Vec<_>>().join(", ")
            ),
        },
        other => TlsError::InvalidCertificate { server, reason: format!("{other:?}") },
    }
}

/// `DnsName("x")` → `x` (rustls's rendering of the certificate's names).
fn unwrap_name(presented: &str) -> &str {
    for prefix in ["DnsName(\"", "IpAddress(\"", "Uri(\""] {
        if let Some(inner) = presented.strip_prefix(prefix).and_then(|r| r.strip_suffix("\")")) {
            return inner;
        }
    }
    presented
}

/// Seconds as "N s", "N min", "N h" or "N days".
fn duration_text(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

fn server_name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_owned(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}
