//! The dnstap protobuf messages this server sends (`AUTH_QUERY`, `AUTH_RESPONSE`), declared
//! after the upstream `dnstap.proto` (dnstap.info; proto2) with only the fields an
//! authoritative server fills, and encoded by prost.

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// One message to send: a query as received or a response as sent.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// A query or a response.
    pub kind: Kind,
    /// The client (resolver) that sent the query.
    pub client: SocketAddr,
    /// The transport it came over.
    pub transport: Transport,
    /// When the query was received.
    pub received: SystemTime,
    /// When the response was sent (responses only).
    pub sent: SystemTime,
    /// The DNS message: the query for [`Kind::AuthQuery`], the response for
    /// [`Kind::AuthResponse`].
    pub message: Vec<u8>,
}

/// `Dnstap.Type.MESSAGE`.
const DNSTAP_TYPE_MESSAGE: i32 = 1;
/// `SocketFamily.INET`.
const INET: i32 = 1;
/// `SocketFamily.INET6`.
const INET6: i32 = 2;

/// `dnstap.Dnstap`: the outer message of every frame.
#[derive(Clone, PartialEq, prost::Message)]
struct Dnstap {
    /// `identity`: the server's name.
    #[prost(bytes = "vec", optional, tag = "1")]
    identity: Option<Vec<u8>>,
    /// `version`: the server's version.
    #[prost(bytes = "vec", optional, tag = "2")]
    version: Option<Vec<u8>>,
    /// `message`: the one payload kind this server sends.
    #[prost(message, optional, tag = "14")]
    message: Option<Message>,
    /// `type`: always `MESSAGE`.
    #[prost(int32, required, tag = "15")]
    kind: i32,
}

/// `dnstap.Message`: one query or response.
#[derive(Clone, PartialEq, prost::Message)]
struct Message {
    /// `type`: `AUTH_QUERY` or `AUTH_RESPONSE`.
    #[prost(int32, required, tag = "1")]
    kind: i32,
    /// `socket_family`: `INET` or `INET6`.
    #[prost(int32, optional, tag = "2")]
    socket_family: Option<i32>,
    /// `socket_protocol`: `UDP` or `TCP`.
    #[prost(int32, optional, tag = "3")]
    socket_protocol: Option<i32>,
    /// `query_address`: the client's address, 4 or 16 bytes.
    #[prost(bytes = "vec", optional, tag = "4")]
    query_address: Option<Vec<u8>>,
    /// `query_port`: the client's port.
    #[prost(uint32, optional, tag = "6")]
    query_port: Option<u32>,
    /// `query_time_sec`.
    #[prost(uint64, optional, tag = "8")]
    query_time_sec: Option<u64>,
    /// `query_time_nsec`.
    #[prost(fixed32, optional, tag = "9")]
    query_time_nsec: Option<u32>,
    /// `query_message`: the query as received (`AUTH_QUERY`).
    #[prost(bytes = "vec", optional, tag = "10")]
    query_message: Option<Vec<u8>>,
    /// `response_time_sec`.
    #[prost(uint64, optional, tag = "12")]
    response_time_sec: Option<u64>,
    /// `response_time_nsec`.
    #[prost(fixed32, optional, tag = "13")]
    response_time_nsec: Option<u32>,
    /// `response_message`: the response as sent (`AUTH_RESPONSE`).
    #[prost(bytes = "vec", optional, tag = "14")]
    response_message: Option<Vec<u8>>,
}

/// The fields of the outer `Dnstap` message that never change: identity and version.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    identity: Vec<u8>,
    version: Vec<u8>,
}

/// The identity and version every message carries.
pub(crate) fn header(identity: &str, version: &str) -> Header {
    Header {
        identity: identity.as_bytes().to_vec(),
        version: version.as_bytes().to_vec(),
    }
}

/// `exchange` as one encoded `Dnstap` message.
pub(crate) fn encode(header: &Header, exchange: Exchange) -> Vec<u8> {
    let (family, address) = match exchange.client.ip().to_canonical() {
        IpAddr::V4(a) => (INET, a.octets().to_vec()),
        IpAddr::V6(a) => (INET6, a.octets().to_vec()),
    };
    let (query_sec, query_nsec) = unix_time(exchange.received);
    let mut message = Message {
        kind: exchange.kind as i32,
        socket_family: Some(family),
        socket_protocol: Some(exchange.transport as i32),
        query_address: Some(address),
        query_port: Some(u32::from(exchange.client.port())),
        query_time_sec: Some(query_sec),
        query_time_nsec: Some(query_nsec),
        ..Message::default()
    };
    match exchange.kind {
        Kind::AuthQuery => message.query_message = Some(exchange.message),
        Kind::AuthResponse => {
            let (sec, nsec) = unix_time(exchange.sent);
            message.response_time_sec = Some(sec);
            message.response_time_nsec = Some(nsec);
            message.response_message = Some(exchange.message);
        }
    }
    prost::Message::encode_to_vec(&Dnstap {
        identity: (!header.identity.is_empty()).then(|| header.identity.clone()),
        version: (!header.version.is_empty()).then(|| header.version.clone()),
        message: Some(message),
        kind: DNSTAP_TYPE_MESSAGE,
    })
}

fn unix_time(t: SystemTime) -> (u64, u32) {
    t.duration_since(UNIX_EPOCH)
        .map_or((0, 0), |d| (d.as_secs(), d.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_query_encodes_field_by_field_as_dnstap_proto_says() {
        let exchange = Exchange {
            kind: Kind::AuthQuery,
            client: "192.0.2.1:53000".parse().unwrap(),
            transport: Transport::Udp,
            received: UNIX_EPOCH + Duration::new(300, 5),
            sent: UNIX_EPOCH,
            message: vec![0xab, 0xcd],
        };
        let bytes = encode(&header("ns1", "v"), exchange);
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
        let exchange = || Exchange {
            kind: Kind::AuthResponse,
            client: "[2001:db8::1]:5300".parse().unwrap(),
            transport: Transport::Tcp,
            received: UNIX_EPOCH + Duration::from_secs(1),
            sent: UNIX_EPOCH + Duration::from_secs(2),
            message: vec![0xff],
        };
        let bytes = encode(&header("", ""), exchange());
        // Dnstap.message (14, length-delimited), then its fields.
        assert_eq!(&bytes[..1], &[0x72]);
        let inner = &bytes[2..bytes.len() - 2];
        assert_eq!(&inner[..6], &[0x08, 2, 0x10, 2, 0x18, 2]);
        assert_eq!(&inner[6..8], &[0x22, 16]);
        assert!(inner.ends_with(&[0x60, 2, 0x6d, 0, 0, 0, 0, 0x72, 1, 0xff]));
        let mapped = Exchange {
            client: "[::ffff:192.0.2.7]:1".parse().unwrap(),
            ..exchange()
        };
        let bytes = encode(&header("", ""), mapped);
        assert_eq!(&bytes[4..10], &[0x10, 1, 0x18, 2, 0x22, 4], "mapped: IPv4");
    }
}
