//! A probe target: an IP address, or a host name resolved at probe time.

use std::net::IpAddr;

use crate::outcome::ProbeError;

/// What a task probes, as an address or a host name (Domain pools).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A DNS host name, resolved before each probe.
    Host(String),
}

impl Target {
    /// Reads an address (IPv6 with or without brackets) or else takes the text as a host name.
    pub(super) fn parse(text: &str) -> Self {
        let unbracketed = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        match unbracketed.parse() {
            Ok(ip) => Self::Ip(ip),
            Err(_) => Self::Host(text.trim_end_matches('.').to_owned()),
        }
    }

    /// The host name, when the target is one.
    pub(super) fn host_name(&self) -> Option<&str> {
        match self {
            Self::Ip(_) => None,
            Self::Host(name) => Some(name),
        }
    }

    /// The address to probe: the IP itself, or the first address the system resolver gives.
    pub(super) async fn resolve(&self) -> Result<IpAddr, ProbeError> {
        let name = match self {
            Self::Ip(ip) => return Ok(*ip),
            Self::Host(name) => name,
        };
        let failed = |reason: String| ProbeError::Resolve {
            host: name.clone(),
            reason,
        };
        let mut addrs = tokio::net::lookup_host((name.as_str(), 0))
            .await
            .map_err(|e| failed(e.to_string()))?;
        addrs
            .next()
            .map(|addr| addr.ip())
            .ok_or_else(|| failed("no address".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_are_told_apart() {
        assert_eq!(Target::parse("10.0.0.1"), Target::Ip([10, 0, 0, 1].into()));
        assert_eq!(
            Target::parse("[::1]"),
            Target::Ip(std::net::Ipv6Addr::LOCALHOST.into())
        );
        assert_eq!(
            Target::parse("www.example.com."),
            Target::Host("www.example.com".into())
        );
    }

    #[tokio::test]
    async fn localhost_resolves() {
        let ip = Target::parse("localhost").resolve().await.unwrap();
        assert!(ip.is_loopback());
    }
}
