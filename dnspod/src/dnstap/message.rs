//! The dnstap protobuf messages this server sends (`AUTH_QUERY`, `AUTH_RESPONSE`), encoded by
//! hand after the upstream `dnstap.proto` (dnstap.info): the two messages use a dozen scalar
//! and bytes fields, which a protobuf code generator would only wrap.

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

/// `Dnstap.Type.MESSAGE`.
const DNSTAP_TYPE_MESSAGE: u64 = 1;

/// `Message.Type` of the messages an authoritative server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `AUTH_QUERY`: a query as received.
    AuthQuery = 1,
    /// `AUTH_RESPONSE`: the response as sent.
    AuthResponse = 2,
}

/// `SocketProtocol` of the query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `UDP`.
    Udp = 1,
    /// `TCP`.
    Tcp = 2,
}

/// What one message says about one query.
pub(crate) struct Exchange<'a> {
    /// The client (resolver) that sent the query.
    pub client: SocketAddr,
    /// The transport it came over.
    pub transport: Transport,
    /// When the query was received.
    pub received: SystemTime,
    /// The DNS message: the query for [`Kind::AuthQuery`], the response for
    /// [`Kind::AuthResponse`].
    pub message: &'a [u8],
    /// When the response was sent (responses only).
    pub sent: SystemTime,
}

/// The fields of the outer `Dnstap` message that never change: identity and version.
pub(crate) fn header(identity: &str, version: &str) -> Vec<u8> {
    let mut out = Vec::new();
    bytes_field(&mut out, 1, identity.as_bytes());
    bytes_field(&mut out, 2, version.as_bytes());
    out
}

/// One encoded `Dnstap` message of `kind`, after the constant `header`.
pub(crate) fn encode(header: &[u8], kind: Kind, exchange: &Exchange<'_>) -> Vec<u8> {
    let mut message = Vec::with_capacity(64 + exchange.message.len());
    uint_field(&mut message, 1, kind as u64);
    let client = exchange.client.ip().to_canonical();
    let (family, address) = match client {
        IpAddr::V4(a) => (1, a.octets().to_vec()),
        IpAddr::V6(a) => (2, a.octets().to_vec()),
    };
    uint_field(&mut message, 2, family);
    uint_field(&mut message, 3, exchange.transport as u64);
    bytes_field(&mut message, 4, &address);
    uint_field(&mut message, 6, u64::from(exchange.client.port()));
    let (seconds, nanos) = unix_time(exchange.received);
    uint_field(&mut message, 8, seconds);
    fixed32_field(&mut message, 9, nanos);
    match kind {
        Kind::AuthQuery => bytes_field(&mut message, 10, exchange.message),
        Kind::AuthResponse => {
            let (seconds, nanos) = unix_time(exchange.sent);
            uint_field(&mut message, 12, seconds);
            fixed32_field(&mut message, 13, nanos);
            bytes_field(&mut message, 14, exchange.message);
        }
    }
    let mut out = Vec::with_capacity(header.len() + message.len() + 8);
    out.extend_from_slice(header);
    bytes_field(&mut out, 14, &message);
    uint_field(&mut out, 15, DNSTAP_TYPE_MESSAGE);
    out
}

fn unix_time(t: SystemTime) -> (u64, u32) {
    t.duration_since(UNIX_EPOCH)
        .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()))
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(out, u64::from((field << 3) | wire_type));
}

fn uint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    key(out, field, 0);
    varint(out, value);
}

fn fixed32_field(out: &mut Vec<u8>, field: u32, value: u32) {
    key(out, field, 5);
    out.extend_from_slice(&value.to_le_bytes());
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_query_encodes_field_by_field_as_dnstap_proto_says() {
        let exchange = Exchange {
            client: "192.0.2.1:53000".parse().unwrap(),
            transport: Transport::Udp,
            received: UNIX_EPOCH + Duration::new(300, 5),
            message: &[0xab, 0xcd],
            sent: UNIX_EPOCH,
        };
        let bytes = encode(&header("ns1", "v"), Kind::AuthQuery, &exchange);
        let message: &[u8] = &[
            0x08, 1, // type AUTH_QUERY
            0x10, 1, // socket_family INET
            0x18, 1, // socket_protocol UDP
            0x22, 4, 192, 0, 2, 1, // query_address
            0x30, 0x88, 0x9e, 0x03, // query_port 53000
            0x40, 0xac, 0x02, // query_time_sec 300
            0x4d, 5, 0, 0, 0, // query_time_nsec 5 (fixed32)
            0x52, 2, 0xab, 0xcd, // query_message
        ];
        let mut expected = vec![0x0a, 3, b'n', b's', b'1', 0x12, 1, b'v'];
        expected.extend([0x72, message.len() as u8]);
        expected.extend(message);
        expected.extend([0x78, 1]); // type MESSAGE
        assert_eq!(bytes, expected);
    }

    #[test]
    fn a_response_carries_both_times_and_ipv6_clients_their_16_bytes() {
        let exchange = Exchange {
            client: "[2001:db8::1]:5300".parse().unwrap(),
            transport: Transport::Tcp,
            received: UNIX_EPOCH + Duration::from_secs(1),
            message: &[0xff],
            sent: UNIX_EPOCH + Duration::from_secs(2),
        };
        let bytes = encode(&[], Kind::AuthResponse, &exchange);
        // Dnstap.message (14, length-delimited), then its fields.
        assert_eq!(&bytes[..1], &[0x72]);
        let inner = &bytes[2..bytes.len() - 2];
        assert_eq!(&inner[..6], &[0x08, 2, 0x10, 2, 0x18, 2]);
        assert_eq!(&inner[6..8], &[0x22, 16]);
        assert!(inner.ends_with(&[0x60, 2, 0x6d, 0, 0, 0, 0, 0x72, 1, 0xff]));
        let mapped = Exchange {
            client: "[::ffff:192.0.2.7]:1".parse().unwrap(),
            ..exchange
        };
        let bytes = encode(&[], Kind::AuthResponse, &mapped);
        assert_eq!(&bytes[4..10], &[0x10, 1, 0x18, 2, 0x22, 4], "mapped: IPv4");
    }
}
