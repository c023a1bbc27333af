//! The hickory [`RequestHandler`]: decodes what the engine needs from a request, asks the
//! engine, and encodes the answer as an authoritative-only server does (AA, negative answers
//! with the SOA, REFUSED outside the zones, EDNS and ECS, FORMERR, NOTIMP, SERVFAIL before the
//! first config). Zone transfers are refused and meta query types answered NOTIMP or FORMERR
//! (RFC 6895); the ECS option is checked strictly ([`crate::ecs`]).
//!
//! Responses never exceed what the transport allows: over UDP the client's payload size within
//! the cap of [`UdpLimits`] (512 bytes without EDNS), over TCP 65 535 bytes. An answer that
//! does not fit is cut between records, never inside one, with room kept for the OPT record
//! (RFC 6891 section 6.1.1), and flagged truncated (TC); clients then retry over TCP. The UDP
//! server asks [`GtmHandler::rate_limit`] before answering.
//!
//! A query with the DO bit gets it echoed (RFC 3225); in a zone signed with `dnssec`, its answer
//! also carries the signatures and denial proofs [`crate::dnssec`] makes (full path only), and
//! a signed answer that does not fit is truncated whole, never split from its signatures.
//!
//! Queries of the common shapes (one question of class IN, with or without EDNS, DO or ECS),
//! over UDP and TCP, take [`GtmHandler::answer_fast`]: decoded and encoded on the wire
//! ([`crate::fast_path`]), without hickory's request and response messages, which cost more
//! than the answer itself. The response is the same, with names compressed; a response that
//! would not fit, and every other query, takes the full path. A query the fast path must not
//! answer is turned away by [`crate::fast_path::decode`] (its shape) or in
//! [`GtmHandler::answer_fast`] (its answer), nowhere else.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, LowerQuery, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_server::proto::rr::{DNSClass, LowerName, Name, Record, RecordType};
use hickory_server::proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use smallvec::SmallVec;

use crate::dnssec::{Made, Signed, sign_answer};
use crate::dnstap::Dnstap;
use crate::engine::{Decision, Rcode};
use crate::fast_path;
use crate::geoip::GeoIp;
use crate::metrics::DomainCounters;
use crate::query_log::{Entry, QueryLog, now_ms};
use crate::rrl::{Rrl, Tick, Verdict};
use crate::sources::Client;
use crate::state::{Shared, Snapshot};
use crate::udp_limits::UdpLimits;

/// The EDNS version this server speaks.
const EDNS_VERSION: u8 = 0;
/// The Compact Answers OK EDNS flag (draft-ietf-dnsop-compact-denial-of-existence): the
/// client takes NXDOMAIN with a compact denial proof.
const EDNS_COMPACT_OK: u16 = 0x4000;

/// Answers queries from the current snapshot of [`Shared`].
#[derive(Clone, Debug)]
pub struct GtmHandler {
    shared: Arc<Shared>,
    geoip: Option<Arc<GeoIp>>,
    limits: UdpLimits,
    rrl: Option<Arc<Rrl>>,
    query_log: Option<Arc<QueryLog>>,
    dnstap: Option<Arc<Dnstap>>,
}

impl GtmHandler {
    /// A handler answering from `shared`, locating clients with `geoip` when given, with the
    /// default [`UdpLimits`].
    pub fn new(shared: Arc<Shared>, geoip: Option<Arc<GeoIp>>) -> Self {
        Self {
            shared,
            geoip,
            limits: UdpLimits::default(),
            rrl: UdpLimits::default().rrl.map(|c| Arc::new(Rrl::new(c))),
            query_log: None,
            dnstap: None,
        }
    }

    /// The same handler logging queries to `log` (both paths alike).
    pub fn with_query_log(self, log: Arc<QueryLog>) -> Self {
        Self {
            query_log: Some(log),
            ..self
        }
    }

    /// The same handler sending every query and response to `dnstap` (both paths and
    /// transports alike; the servers hand them over, see [`GtmHandler::dnstap`]).
    pub fn with_dnstap(self, dnstap: Arc<Dnstap>) -> Self {
        Self {
            dnstap: Some(dnstap),
            ..self
        }
    }

    /// dnstap, when it is on.
    pub fn dnstap(&self) -> Option<&Dnstap> {
        self.dnstap.as_deref()
    }

    /// The same handler with other UDP limits.
    pub fn with_udp_limits(self, limits: UdpLimits) -> Self {
        Self {
            limits,
            rrl: limits.rrl.map(|c| Arc::new(Rrl::new(c))),
            ..self
        }
    }

    /// The UDP limits.
    pub fn udp_limits(&self) -> &UdpLimits {
        &self.limits
    }

    /// The time for [`GtmHandler::rate_limit`]; `None` when rate limiting is off. Read once per
    /// batch of queries.
    pub fn rate_limit_now(&self) -> Option<Tick> {
        self.rrl.as_ref().map(|r| r.now())
    }

    /// Whether a UDP response to `source` may go out at `now` (from
    /// [`GtmHandler::rate_limit_now`]); limited responses are counted.
    pub fn rate_limit(&self, source: IpAddr, now: Option<Tick>) -> Verdict {
        let (Some(rrl), Some(now)) = (&self.rrl, now) else {
            return Verdict::Send;
        };
        let verdict = rrl.check(source, now);
        match verdict {
            Verdict::Send => {}
            Verdict::Slip => self.shared.metrics.rrl.slipped(),
            Verdict::Drop => self.shared.metrics.rrl.dropped(),
        }
        verdict
    }

    /// Counts a FORMERR sent to a query that did not decode (no question to count it under).
    pub fn count_undecodable(&self, started: Instant) {
        self.finish(None, RecordType::Unknown(0), ResponseCode::FormErr, started);
    }
}

/// What a query is answered from, decoded from the request.
enum Source {
    /// No ECS option: the resolver's address.
    Resolver(IpAddr),
    /// An ECS option; source prefix 0 means "do not locate me".
    Ecs(ClientSubnet),
}

/// The response code of a query type this server never answers with data, if `qtype` is one
/// (RFC 6895): zone transfers are refused, as authoritative-only servers without transfers
/// configured answer (Knot, NSD); types that only exist in the additional section (OPT, TSIG)
/// are malformed as a question; other meta and query types (TKEY, MAILB, MAILA, the rest of
/// 128-254) are not implemented. `ANY` is answered (RFC 8482).
pub(crate) fn unanswered_qtype(qtype: RecordType) -> Option<ResponseCode> {
    match u16::from(qtype) {
        251 | 252 => Some(ResponseCode::Refused),
        41 | 250 => Some(ResponseCode::FormErr),
        128..=254 => Some(ResponseCode::NotImp),
        _ => None,
    }
}

/// The ECS scope to echo for `subnet` when the answer depended on `scope` leading bits of the
/// client address. IPv4-mapped IPv6 subnets are matched as IPv4, so their scope also counts
/// the 96 bits before the IPv4 address: `::ffff:10.1.2.0/120` answered for 10.0.0.0/8 gets
/// scope 104, never 8 (which would be `::/8`).
fn echoed_scope(subnet: &ClientSubnet, scope: u8) -> u8 {
    if subnet.source_prefix() == 0 || scope == 0 {
        return 0;
    }
    match subnet.addr() {
        IpAddr::V4(_) => scope.min(32),
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => scope.min(32) + 96,
        IpAddr::V6(_) => scope.min(128),
    }
}

/// How many of `answers`, and then of `additionals`, fit a response of at most `limit` bytes
/// after the question, with `authority` and the OPT record of `edns` reserved: a response
/// is cut between records, never inside one, and keeps its OPT record (RFC 6891 section
/// 6.1.1). Additional records are only counted when every answer fits. Measured by encoding as
/// hickory does (the question as received, names compressed against it).
fn records_that_fit(
    queries: &Queries,
    answers: &[&Record],
    additionals: &[&Record],
    authority: &[&Record],
    edns: Option<&Edns>,
    limit: u16,
) -> (usize, usize) {
    const HEADER: usize = 12;
    let encoded_len = |record: &Record| {
        let mut bytes = Vec::new();
        let mut encoder = BinEncoder::new(&mut bytes);
        record
            .emit(&mut encoder)
            .map_or(usize::MAX, |()| bytes.len())
    };
    let reserve = edns
        .map_or(0, |e| encoded_len(&Record::from(e)))
        .saturating_add(authority.iter().map(|r| encoded_len(r)).sum());
    let room = usize::from(limit).saturating_sub(reserve);
    let mut bytes = Vec::with_capacity(room.min(4096));
    let mut encoder = BinEncoder::new(&mut bytes);
    let question = queries.as_bytes();
    if encoder.emit_vec(&[0; HEADER]).is_err() || encoder.emit_vec(question).is_err() {
        return (0, 0);
    }
    if !queries.is_empty() {
        encoder.store_label_pointer(HEADER, HEADER + question.len());
    }
    for (i, record) in answers.iter().enumerate() {
        if record.emit(&mut encoder).is_err() || encoder.offset() > room {
            return (i, 0);
        }
    }
    for (i, record) in additionals.iter().enumerate() {
        if record.emit(&mut encoder).is_err() || encoder.offset() > room {
            return (answers.len(), i);
        }
    }
    (answers.len(), additionals.len())
}

#[async_trait::async_trait]
impl RequestHandler for GtmHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = Instant::now();
        // DO is echoed (RFC 3225); signatures and proofs are added only when it is set.
        let dnssec_ok = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        let mut edns = request.edns.as_ref().map(|_| {
            let mut e = Edns::new();
            e.set_max_payload(self.limits.max_payload);
            e.set_version(EDNS_VERSION);
            e.set_dnssec_ok(dnssec_ok);
            e
        });
        let (query, snapshot, ecs) = match self.prepare(request) {
            Ok(prepared) => prepared,
            Err(code) => {
                let qtype = request
                    .queries
                    .queries()
                    .first()
                    .map_or(RecordType::Unknown(0), |q| q.query_type());
                let response = MessageResponseBuilder::new(&request.queries, edns.as_ref())
                    .error_msg(&request.metadata, code);
                let info = send(&mut response_handle, response, &request.metadata).await;
                self.finish(None, qtype, info.response_code, started);
                return info;
            }
        };
        let qtype = query.query_type();

        let source = match ecs {
            Some(subnet) => Source::Ecs(subnet),
            None => Source::Resolver(request.src().ip()),
        };
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let mut answer =
            if query.query_class() == DNSClass::IN || query.query_class() == DNSClass::ANY {
                Some(self.answer(&snapshot, query.name(), qtype, &source))
            } else {
                None
            };
        let signed = match answer.as_mut() {
            Some(a) if dnssec_ok => self.sign(&snapshot, a, query.name(), qtype),
            _ => Ok(None),
        };
        let signed = match signed {
            Ok(signed) => signed,
            Err(code) => {
                let response = MessageResponseBuilder::new(&request.queries, edns.as_ref())
                    .error_msg(&request.metadata, code);
                let info = send(&mut response_handle, response, &request.metadata).await;
                self.finish(None, qtype, info.response_code, started);
                return info;
            }
        };
        let decision = answer.as_ref().and_then(|a| a.decision);
        let (records, additionals, soa, domain, scope) = match &answer {
            Some(a) => {
                metadata.response_code = response_code(a.rcode);
                metadata.authoritative = a.zone.is_some();
                let soa = a.zone.filter(|_| a.is_negative()).map(|z| &z.soa);
                (
                    a.records.as_slice(),
                    a.additionals,
                    soa,
                    a.domain,
                    a.ecs_scope,
                )
            }
            None => {
                metadata.response_code = ResponseCode::Refused;
                (&[][..], &[][..], None, None, 0)
            }
        };
        let compact_ok = request
            .edns
            .as_ref()
            .is_some_and(|e| e.flags().z & EDNS_COMPACT_OK != 0);
        if let (Some(s), Some(e)) = (&signed, edns.as_mut())
            && s.nxname
        {
            // Compact denial: NOERROR with the NXNAME proof, unless the client takes NXDOMAIN.
            if compact_ok {
                e.flags_mut().z |= EDNS_COMPACT_OK;
            } else {
                metadata.response_code = ResponseCode::NoError;
            }
        }
        let made = |f: fn(&Signed) -> &[Made]| {
            signed
                .as_ref()
                .map_or(&[][..], f)
                .iter()
                .flat_map(|m| m.iter())
        };
        let answers: SmallVec<[&Record; 8]> =
            records.iter().copied().chain(made(|s| &s.answer)).collect();
        let authority: SmallVec<[&Record; 4]> =
            soa.into_iter().chain(made(|s| &s.authority)).collect();
        let additionals: SmallVec<[&Record; 8]> =
            additionals.iter().chain(made(|s| &s.additional)).collect();
        if let (Source::Ecs(subnet), Some(e)) = (&source, edns.as_mut()) {
            e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                subnet.addr(),
                subnet.source_prefix(),
                echoed_scope(subnet, scope),
            )));
        }
        let limit = match request.protocol() {
            Protocol::Udp => self
                .limits
                .response_size(request.edns.as_ref().map(Edns::max_payload)),
            _ => u16::MAX,
        };
        let (mut fit, mut extra) = records_that_fit(
            &request.queries,
            &answers,
            &additionals,
            &authority,
            edns.as_ref(),
            limit,
        );
        // Glue that does not fit truncates (RFC 9471); other additional data is only dropped.
        if fit < answers.len() || (extra < additionals.len() && qtype == RecordType::NS) {
            metadata.truncation = true;
        }
        // A signed response is cut by whole sections: an RRset never goes without its
        // signature (RFC 4035 section 3.1.1).
        if signed.is_some() {
            if fit < answers.len() {
                fit = 0;
            }
            if extra < additionals.len() {
                extra = 0;
            }
        }
        let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            metadata,
            answers[..fit].iter().copied(),
            std::iter::empty::<&Record>(),
            authority.iter().copied(),
            additionals[..extra].iter().copied(),
        );
        let info = send(&mut response_handle, response, &request.metadata).await;
        let counters = domain.map(|d| snapshot.counters[d].as_ref());
        self.finish(counters, qtype, info.response_code, started);
        if let Some(log) = self.query_log.as_ref().filter(|l| l.admit()) {
            log.push(Entry {
                transport: transport_name(request.protocol()),
                ecs: log_ecs(&source),
                ..log_entry(
                    &snapshot,
                    request.src().ip(),
                    query.original().name(),
                    qtype,
                    info.response_code,
                    &records[..fit.min(records.len())],
                    domain,
                    decision,
                    scope,
                    started,
                )
            });
        }
        info
    }
}

impl GtmHandler {
    /// The fast path ([`crate::fast_path`]): answers a query of a common shape into `out` and
    /// returns true. Returns false, `out` unspecified, when the query has another shape, no
    /// config is loaded yet (SERVFAIL) or the response exceeds what `protocol` allows
    /// (truncation over UDP): the caller then takes the full path,
    /// [`RequestHandler::handle_request`], which answers alike (`tests/fast_path.rs`).
    pub fn answer_fast(
        &self,
        packet: &[u8],
        src: SocketAddr,
        protocol: Protocol,
        out: &mut Vec<u8>,
    ) -> bool {
        let started = Instant::now();
        let Some(query) = fast_path::decode(packet) else {
            return false;
        };
        let Some(snapshot) = self.shared.snapshot() else {
            return false;
        };
        let ecs = query.edns.as_ref().and_then(|e| e.ecs.as_ref());
        let source = match ecs {
            Some(e) => Source::Ecs(e.subnet),
            None => Source::Resolver(src.ip()),
        };
        let qname = LowerName::new(&query.name);
        let answer = self.answer(&snapshot, &qname, query.qtype, &source);
        // A DO query in a signed zone gets signatures and proofs: the full path's.
        let dnssec_ok = query.edns.as_ref().is_some_and(|e| e.dnssec_ok);
        if dnssec_ok && answer.zone.is_some_and(|z| z.dnssec.is_some()) {
            return false;
        }
        let rcode = response_code(answer.rcode);
        let scope = match &source {
            Source::Ecs(subnet) => echoed_scope(subnet, answer.ecs_scope),
            Source::Resolver(_) => 0,
        };
        let reply = fast_path::Reply {
            query: &query,
            answer: &answer,
            flags: fast_path::response_flags(&query, &answer, rcode),
            opt: query
                .edns
                .as_ref()
                .map(|e| fast_path::ResponseOpt::new(e, self.limits.max_payload, scope)),
            limit: match protocol {
                Protocol::Udp => self
                    .limits
                    .response_size(query.edns.as_ref().map(|e| e.payload)),
                _ => u16::MAX,
            },
        };
        if !fast_path::encode(out, &reply) {
            return false;
        }
        let counters = answer.domain.map(|d| snapshot.counters[d].as_ref());
        self.finish(counters, query.qtype, rcode, started);
        if let Some(log) = self.query_log.as_ref().filter(|l| l.admit()) {
            log.push(Entry {
                transport: transport_name(protocol),
                ecs: log_ecs(&source),
                ..log_entry(
                    &snapshot,
                    src.ip(),
                    &query.name,
                    query.qtype,
                    rcode,
                    &answer.records,
                    answer.domain,
                    answer.decision,
                    answer.ecs_scope,
                    started,
                )
            });
        }
        true
    }

    /// What answering needs, or the response code that refuses the request.
    fn prepare<'r>(
        &self,
        request: &'r Request,
    ) -> Result<(&'r LowerQuery, Arc<Snapshot>, Option<ClientSubnet>), ResponseCode> {
        if request
            .edns
            .as_ref()
            .is_some_and(|e| e.version() > EDNS_VERSION)
        {
            return Err(ResponseCode::BADVERS);
        }
        if request.metadata.op_code != OpCode::Query {
            return Err(ResponseCode::NotImp);
        }
        let query = request
            .request_info()
            .map_err(|_| ResponseCode::FormErr)?
            .query;
        if let Some(code) = unanswered_qtype(query.query_type()) {
            return Err(code);
        }
        let ecs =
            crate::ecs::query_subnet(request.as_slice()).map_err(|_| ResponseCode::FormErr)?;
        let snapshot = self.shared.snapshot().ok_or(ResponseCode::ServFail)?;
        Ok((query, snapshot, ecs))
    }

    /// The signatures and proof of `answer` when its zone is signed (`None` otherwise); a
    /// signing failure is logged and answered SERVFAIL.
    fn sign(
        &self,
        snapshot: &Snapshot,
        answer: &mut crate::engine::Answer<'_>,
        qname: &LowerName,
        qtype: RecordType,
    ) -> Result<Option<Signed>, ResponseCode> {
        let Some(key) = answer.zone.and_then(|z| z.dnssec.as_deref()) else {
            return Ok(None);
        };
        sign_answer(key, &snapshot.compiled, answer, qname, qtype)
            .map(Some)
            .map_err(|error| {
                tracing::warn!(%error, %qname, "signing an answer failed");
                ResponseCode::ServFail
            })
    }

    /// The engine's answer; a plain function so that the per-query RNG and client (neither
    /// `Send`) never live across an await.
    fn answer<'s>(
        &self,
        snapshot: &'s Snapshot,
        name: &hickory_server::proto::rr::LowerName,
        qtype: RecordType,
        source: &Source,
    ) -> crate::engine::Answer<'s> {
        let geoip = self.geoip.as_deref();
        let client = match source {
            Source::Resolver(ip) => Some(Client::new(*ip, geoip)),
            Source::Ecs(s) if s.source_prefix() == 0 => None,
            Source::Ecs(s) => Some(Client::new(s.addr(), geoip)),
        };
        snapshot
            .compiled
            .answer(name, qtype, client.as_ref(), &mut rand::rng())
    }

    fn finish(
        &self,
        counters: Option<&DomainCounters>,
        qtype: RecordType,
        rcode: ResponseCode,
        started: Instant,
    ) {
        let queries = &self.shared.metrics.queries;
        counters
            .unwrap_or_else(|| queries.other())
            .count(qtype, rcode);
        queries.observe_latency(started.elapsed());
    }
}

/// The response code of the engine's `rcode`.
fn response_code(rcode: Rcode) -> ResponseCode {
    match rcode {
        Rcode::NoError => ResponseCode::NoError,
        Rcode::NxDomain => ResponseCode::NXDomain,
        Rcode::Refused => ResponseCode::Refused,
    }
}

/// The query log's name of a transport.
fn transport_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Udp => "udp",
        _ => "tcp",
    }
}

/// The query log's ECS field: the subnet asked for, if any.
fn log_ecs(source: &Source) -> Option<String> {
    match source {
        Source::Ecs(s) => Some(format!("{}/{}", s.addr(), s.source_prefix())),
        Source::Resolver(_) => None,
    }
}

/// A query log entry for a UDP query from `resolver` without ECS (the caller fills in the
/// rest).
#[allow(clippy::too_many_arguments)]
fn log_entry(
    snapshot: &Snapshot,
    resolver: IpAddr,
    name: &Name,
    qtype: RecordType,
    rcode: ResponseCode,
    answer: &[&Record],
    domain: Option<usize>,
    decision: Option<Decision>,
    scope: u8,
    started: Instant,
) -> Entry {
    let compiled = &snapshot.compiled;
    Entry {
        time_ms: now_ms(),
        transport: "udp",
        resolver,
        ecs: None,
        name: name.to_string(),
        qtype: qtype.to_string(),
        rcode: rcode.to_string(),
        answer: answer.iter().map(|r| r.data.to_string()).collect(),
        domain: domain
            .and_then(|d| compiled.domain_name(d))
            .map(str::to_string),
        policy: decision.map(|d| d.policy),
        pool: decision
            .and_then(|d| d.pool)
            .and_then(|p| compiled.pool_id(p))
            .map(str::to_string),
        reason: decision.map(|d| d.reason),
        pool_fail_open: decision.is_some_and(|d| d.pool_fail_open),
        scope,
        latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    }
}

/// Sends a response; on failure logs and reports SERVFAIL (nothing reached the client).
async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Metadata,
) -> ResponseInfo {
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            tracing::debug!(%error, "sending a response failed");
            let mut metadata = Metadata::response_from_request(request);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use hickory_server::proto::op::{Message, MessageType, Query};
    use hickory_server::proto::rr::RData;
    use hickory_server::proto::rr::rdata::AAAA;
    use hickory_server::proto::serialize::binary::{BinDecodable, BinDecoder};

    use super::*;

    #[test]
    fn answers_beyond_65535_bytes_are_cut_between_records_and_keep_the_opt_record() {
        let name = Name::from_ascii("big.gtm.example.com.").unwrap();
        let mut question = Vec::new();
        Query::query(name.clone(), RecordType::AAAA)
            .emit(&mut BinEncoder::new(&mut question))
            .unwrap();
        let queries = Queries::read(&mut BinDecoder::new(&question), 1).unwrap();
        let records: Vec<Record> = (0..3000u32)
            .map(|i| {
                let rdata = RData::AAAA(AAAA(Ipv6Addr::from(u128::from(i))));
                Record::from_rdata(name.clone(), 30, rdata)
            })
            .collect();
        let answers: Vec<&Record> = records.iter().collect();
        let edns = Edns::new();
        let (fit, _) = records_that_fit(&queries, &answers, &[], &[], Some(&edns), u16::MAX);
        let encode = |n: usize| {
            let mut bytes = Vec::new();
            let mut encoder = BinEncoder::new(&mut bytes);
            let response = MessageResponseBuilder::new(&queries, Some(&edns)).build(
                Metadata::new(1, MessageType::Response, OpCode::Query),
                answers[..n].iter().copied(),
                std::iter::empty::<&Record>(),
                None,
                std::iter::empty::<&Record>(),
            );
            let header = response.destructive_emit(&mut encoder).unwrap();
            (header, bytes)
        };
        let (header, bytes) = encode(fit);
        assert!(!header.truncation && header.counts().additionals == 1);
        let mut decoder = BinDecoder::new(&bytes);
        let m = Message::read(&mut decoder).unwrap();
        assert!(
            decoder.is_empty(),
            "whole records only, nothing after the OPT record"
        );
        assert_eq!(m.answers.len(), fit);
        assert!(m.edns.is_some());
        // One more would not have fitted with the OPT record.
        let (header, _) = encode(fit + 1);
        assert!(header.truncation, "{fit} is the most that fits");
    }

    #[test]
    fn scopes_of_ipv4_mapped_subnets_count_ipv6_bits() {
        let mapped = ClientSubnet::new("::ffff:10.1.2.0".parse().unwrap(), 120, 0);
        assert_eq!(echoed_scope(&mapped, 8), 104);
        assert_eq!(echoed_scope(&mapped, 0), 0);
        let v4 = ClientSubnet::new("10.1.2.0".parse().unwrap(), 24, 0);
        assert_eq!(echoed_scope(&v4, 8), 8);
        let unlocated = ClientSubnet::new("::".parse().unwrap(), 0, 0);
        assert_eq!(echoed_scope(&unlocated, 8), 0);
    }
}
