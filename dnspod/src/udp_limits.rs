//! What the DNS pod sends over UDP at most, so that it never serves as an amplifier: a cap on
//! the response size whatever payload size a query advertises, and response rate limiting
//! per source prefix ([`crate::rrl`]). TCP needs neither: its handshake proves the source.

use crate::rrl::RrlConfig;

/// Default cap on UDP responses: the size that avoids IP fragmentation on practically every
/// path (DNS flag day 2020), as Knot, BIND and Unbound default to.
pub const DEFAULT_MAX_PAYLOAD: u16 = 1232;
/// Largest cap: the largest UDP payload over IPv4.
pub const MAX_PAYLOAD_CEILING: u16 = 65_507;
/// The UDP response limit without EDNS (RFC 1035 section 4.2.1), also the least a cap can be.
pub const PLAIN_UDP_MAX: u16 = 512;

/// UDP response limits (`docs/configuration.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpLimits {
    /// Largest UDP response, bytes (512 to 65 507); also the payload size this server
    /// advertises in its OPT records.
    pub max_payload: u16,
    /// Response rate limiting; `None` turns it off.
    pub rrl: Option<RrlConfig>,
}

impl Default for UdpLimits {
    fn default() -> Self {
        Self {
            max_payload: DEFAULT_MAX_PAYLOAD,
            rrl: Some(RrlConfig::default()),
        }
    }
}

impl UdpLimits {
    /// The largest UDP response to a query that advertises `edns_payload` (`None`: the query
    /// has no EDNS): 512 bytes without EDNS, else the advertised size within 512 and the cap.
    pub fn response_size(&self, edns_payload: Option<u16>) -> u16 {
        let cap = self.max_payload.clamp(PLAIN_UDP_MAX, MAX_PAYLOAD_CEILING);
        edns_payload.map_or(PLAIN_UDP_MAX, |p| p.clamp(PLAIN_UDP_MAX, cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_capped_whatever_the_query_advertises() {
        let limits = UdpLimits::default();
        assert_eq!(limits.response_size(None), 512);
        assert_eq!(limits.response_size(Some(0)), 512);
        assert_eq!(limits.response_size(Some(1000)), 1000);
        assert_eq!(limits.response_size(Some(4096)), 1232);
        assert_eq!(limits.response_size(Some(65_535)), 1232);
        let open = UdpLimits {
            max_payload: u16::MAX,
            rrl: None,
        };
        assert_eq!(open.response_size(Some(65_535)), 65_507);
    }
}
