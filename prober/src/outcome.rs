//! What one probe yields: its latency and, when it failed, why.

use std::io;
use std::time::Duration;

/// The result of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// For a success, the protocol's latency (TCP handshake, HTTP request until the verdict,
    /// mean ICMP round trip); for a failure, the time until the probe gave up.
    pub latency: Duration,
    /// `Ok` when the probe passed, else why it failed.
    pub result: Result<(), ProbeError>,
}

impl ProbeOutcome {
    /// True when the probe passed.
    pub fn is_success(&self) -> bool {
        self.result.is_ok()
    }
}

/// Why a probe failed. `Display` gives a short message fit for a status field or an event;
/// [`ProbeError::reason`] gives a stable CamelCase word for conditions and metric labels.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The probe took longer than the template's timeout.
    #[error("timed out after {millis} ms")]
    TimedOut {
        /// The timeout that expired.
        millis: u32,
    },
    /// The target host name did not resolve to an address.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// The connection failed (refused, reset, unreachable, ...).
    #[error("{0}")]
    Connect(String),
    /// The server certificate did not verify.
    #[error("certificate verify failed: {0}")]
    Certificate(String),
    /// The TLS handshake failed for another reason than the certificate.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// The HTTP exchange failed (protocol error, too many redirects, ...).
    #[error("HTTP request failed: {0}")]
    Http(String),
    /// The response status is not one of the expected codes.
    #[error("HTTP {code} not in {expected}")]
    UnexpectedStatus {
        /// The status code received.
        code: u16,
        /// The expected codes and ranges, as the template lists them.
        expected: String,
    },
    /// The response body (its first 64 KiB) lacks the expected text.
    #[error("body does not contain {needle:?}")]
    BodyMismatch {
        /// The expected text (cut to 64 characters).
        needle: String,
    },
    /// More echo requests went unanswered than the template tolerates.
    #[error("{lost} of {sent} ICMP echo requests lost ({tolerated_percent}% loss tolerated)")]
    PacketLoss {
        /// Echo requests sent.
        sent: u8,
        /// Echo requests without a reply.
        lost: u8,
        /// The loss the template tolerates.
        tolerated_percent: u8,
    },
    /// This process can open neither an unprivileged nor a raw ICMP socket.
    #[error("ICMP unavailable: {0}")]
    IcmpUnavailable(String),
    /// The task cannot be probed as specified (missing port, malformed header, ...).
    #[error("invalid check: {0}")]
    InvalidCheck(String),
}

impl ProbeError {
    /// A stable CamelCase word for the failure kind, for condition reasons and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TimedOut { .. } => "Timeout",
            Self::Resolve { .. } => "ResolveFailed",
            Self::Connect(_) => "ConnectFailed",
            Self::Certificate(_) => "CertificateInvalid",
            Self::Tls(_) => "TlsFailed",
            Self::Http(_) => "HttpFailed",
            Self::UnexpectedStatus { .. } => "UnexpectedStatus",
            Self::BodyMismatch { .. } => "BodyMismatch",
            Self::PacketLoss { .. } => "PacketLoss",
            Self::IcmpUnavailable(_) => "IcmpUnavailable",
            Self::InvalidCheck(_) => "InvalidCheck",
        }
    }

    /// A connection-level failure, worded for people ("connection refused").
    pub(crate) fn connect(err: &io::Error) -> Self {
        let text = match err.kind() {
            io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            io::ErrorKind::ConnectionReset => "connection reset by peer".to_owned(),
            io::ErrorKind::ConnectionAborted => "connection aborted".to_owned(),
            io::ErrorKind::HostUnreachable => "host unreachable".to_owned(),
            io::ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
            io::ErrorKind::UnexpectedEof => "connection closed by peer".to_owned(),
            _ => err.to_string(),
        };
        Self::Connect(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_short_and_readable() {
        assert_eq!(
            ProbeError::TimedOut { millis: 1000 }.to_string(),
            "timed out after 1000 ms"
        );
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            ProbeError::connect(&refused).to_string(),
            "connection refused"
        );
        let status = ProbeError::UnexpectedStatus {
            code: 503,
            expected: "200-299".into(),
        };
        assert_eq!(status.to_string(), "HTTP 503 not in 200-299");
        let body = ProbeError::BodyMismatch {
            needle: "ok".into(),
        };
        assert_eq!(body.to_string(), "body does not contain \"ok\"");
        assert_eq!(body.reason(), "BodyMismatch");
    }
}
