//! The wire-level fast path: queries of the common shapes decoded, and their responses encoded,
//! directly on the bytes, without hickory's request and response messages (which cost more than
//! the answer itself). [`decode`] is the one place that decides which queries take it; the
//! handler ([`crate::handler::GtmHandler::answer_fast`]) asks the engine and calls the encoders
//! here, which give up (the handler then takes the full path) on anything they do not write
//! exactly as the full path would.
//!
//! The shapes taken: a QUERY with one question of class IN and of a type answered with data,
//! nothing in the answer and authority sections, and in the additional section nothing or one
//! OPT record (EDNS version 0, owner the root, extended RCODE 0) whose options are at most one
//! well-formed ECS option ([`crate::ecs`]) and options the server ignores (cookies, padding,
//! keepalive), with nothing after it. The responses are those of the full path, with names
//! compressed: the question is copied as received (its case included), answer owners point at
//! it, the SOA of a negative answer points at the apex inside it, and the OPT record carries
//! this server's payload size, the query's DO bit (RFC 3225 section 3) and, for an ECS query,
//! the option echoed with its scope (RFC 7871 section 7.2.1).

use std::net::IpAddr;

use gtm_crds::RecordType as DomainType;
use hickory_server::proto::ProtoError;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::rdata::opt::ClientSubnet;
use hickory_server::proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_server::proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder,
};

use crate::engine::Answer;
use crate::handler::unanswered_qtype;
use crate::record_type::of_qtype;
use crate::udp_limits::PLAIN_UDP_MAX;

/// Header flags of a query the fast path takes: QR (a response), OPCODE (not QUERY) and TC
/// must be clear.
const QUERY_MASK: u16 = 0x8000 | 0x7800 | 0x0200;
/// Header flags copied from the query into the response: RD and CD.
const COPIED_FLAGS: u16 = 0x0100 | 0x0010;
const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
/// The DO bit of the OPT record's flags.
const FLAG_DO: u16 = 0x8000;
const HEADER: usize = 12;
/// An answer record's owner: a pointer to the question's name.
const POINTER_TO_QUESTION: u16 = 0xC000 | HEADER as u16;
/// The OPT record type.
const OPT: u16 = 41;
/// EDNS option codes the fast path takes.
const ECS: u16 = 8;
/// Options the server ignores (RFC 7873 cookies, RFC 7828 keepalive, RFC 7830 padding):
/// hickory keeps them as unknown options, which the full path never echoes either.
const IGNORED_OPTIONS: [u16; 3] = [10, 11, 12];
/// The OPT record without options: root owner, type, class, TTL, RDLENGTH.
const OPT_FIXED: usize = 11;

/// A query of a shape the fast path takes, decoded.
pub(crate) struct FastQuery<'p> {
    pub(crate) id: u16,
    pub(crate) flags: u16,
    pub(crate) name: Name,
    pub(crate) qtype: RecordType,
    /// The question section as received.
    pub(crate) question: &'p [u8],
    /// The query's OPT record, if any.
    pub(crate) edns: Option<QueryEdns<'p>>,
}

/// What the fast path needs of a query's OPT record.
pub(crate) struct QueryEdns<'p> {
    /// The UDP payload size the client advertises.
    pub(crate) payload: u16,
    /// The DO bit (RFC 3225).
    pub(crate) dnssec_ok: bool,
    /// The ECS option, checked.
    pub(crate) ecs: Option<QueryEcs<'p>>,
}

/// A query's ECS option: decoded, and its data as received (to echo).
pub(crate) struct QueryEcs<'p> {
    pub(crate) subnet: ClientSubnet,
    data: &'p [u8],
}

/// Decodes `packet` when it has a shape the fast path takes (see the module's doc).
pub(crate) fn decode(packet: &[u8]) -> Option<FastQuery<'_>> {
    let word = |i: usize| Some(u16::from_be_bytes([*packet.get(i)?, *packet.get(i + 1)?]));
    if packet.len() < HEADER || word(2)? & QUERY_MASK != 0 {
        return None;
    }
    let additional = match (word(4)?, word(6)?, word(8)?, word(10)?) {
        (1, 0, 0, n @ (0 | 1)) => n == 1,
        _ => return None,
    };
    // Decoded from the start of the message, where compression pointers count from.
    let mut decoder = BinDecoder::new(packet);
    decoder.read_slice(HEADER).ok()?;
    let name = Name::read(&mut decoder).ok()?;
    let end = decoder.index();
    // The question is copied into the response, where a compression pointer in it would
    // point at the response's bytes, not the query's.
    if !uncompressed(&packet[HEADER..end]) {
        return None;
    }
    if word(end + 2)? != u16::from(DNSClass::IN) {
        return None;
    }
    let qtype = RecordType::from(word(end)?);
    if unanswered_qtype(qtype).is_some() {
        return None;
    }
    let question_end = end + 4;
    let edns = if additional {
        Some(query_edns(packet.get(question_end..)?)?)
    } else if packet.len() == question_end {
        None
    } else {
        return None;
    };
    Some(FastQuery {
        id: word(0)?,
        flags: word(2)?,
        name,
        qtype,
        question: &packet[HEADER..question_end],
        edns,
    })
}

/// Whether the wire-form `name` (which decoded) is made of labels only, without a compression
/// pointer.
fn uncompressed(name: &[u8]) -> bool {
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len & 0xC0 != 0 {
            return false;
        }
        at += 1 + usize::from(len);
    }
    true
}

/// The OPT record that is the whole of `record`, when the fast path takes it.
fn query_edns(record: &[u8]) -> Option<QueryEdns<'_>> {
    let [0, t0, t1, p0, p1, 0, 0, f0, _, l0, l1, options @ ..] = record else {
        return None;
    };
    if u16::from_be_bytes([*t0, *t1]) != OPT
        || options.len() != usize::from(u16::from_be_bytes([*l0, *l1]))
    {
        return None;
    }
    let mut ecs = None;
    let mut rest = options;
    while let [c0, c1, n0, n1, tail @ ..] = rest {
        let code = u16::from_be_bytes([*c0, *c1]);
        let data = tail.get(..usize::from(u16::from_be_bytes([*n0, *n1])))?;
        rest = &tail[data.len()..];
        if code == ECS && ecs.is_none() {
            let subnet = crate::ecs::subnet(data).ok()?;
            ecs = Some(QueryEcs { subnet, data });
        } else if !IGNORED_OPTIONS.contains(&code) {
            return None;
        }
    }
    rest.is_empty().then_some(QueryEdns {
        payload: u16::from_be_bytes([*p0, *p1]),
        dnssec_ok: u16::from_be_bytes([*f0, 0]) & FLAG_DO != 0,
        ecs,
    })
}

/// The OPT record of a response, written after the answer.
pub(crate) struct ResponseOpt<'p> {
    /// The payload size this server advertises.
    payload: u16,
    /// The query's DO bit.
    dnssec_ok: bool,
    /// The query's ECS option data and the scope to echo in it.
    ecs: Option<(&'p [u8], u8)>,
}

impl<'p> ResponseOpt<'p> {
    /// The OPT record answering `query`, advertising `payload` bytes; `scope` is the ECS scope
    /// to echo (see [`crate::handler`]'s `echoed_scope`).
    pub(crate) fn new(query: &QueryEdns<'p>, payload: u16, scope: u8) -> Self {
        Self {
            // As hickory writes it (`DNSClass::for_opt`): never below 512.
            payload: payload.max(PLAIN_UDP_MAX),
            dnssec_ok: query.dnssec_ok,
            ecs: query.ecs.as_ref().map(|e| (e.data, scope)),
        }
    }

    fn len(&self) -> usize {
        OPT_FIXED + self.ecs.map_or(0, |(data, _)| 4 + data.len())
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(0);
        out.extend_from_slice(&OPT.to_be_bytes());
        out.extend_from_slice(&self.payload.to_be_bytes());
        let flags = if self.dnssec_ok { FLAG_DO } else { 0 };
        // Extended RCODE 0 (every RCODE answered here fits the header), version 0.
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&((self.len() - OPT_FIXED) as u16).to_be_bytes());
        if let Some((data, scope)) = self.ecs {
            out.extend_from_slice(&ECS.to_be_bytes());
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            // Family and source prefix as asked, then the scope, then the address as asked.
            out.extend_from_slice(&data[..3]);
            out.push(scope);
            out.extend_from_slice(&data[4..]);
        }
    }
}

/// The header flags of the response to `query`.
pub(crate) fn response_flags(
    query: &FastQuery<'_>,
    answer: &Answer<'_>,
    rcode: ResponseCode,
) -> u16 {
    let mut flags = FLAG_QR | (query.flags & COPIED_FLAGS) | u16::from(rcode.low());
    if answer.zone.is_some() {
        flags |= FLAG_AA;
    }
    flags
}

/// A response to write: the query, the engine's answer, the header flags, the OPT record (for
/// an EDNS query) and the most bytes the transport allows.
pub(crate) struct Reply<'r, 'p, 'c> {
    pub(crate) query: &'r FastQuery<'p>,
    pub(crate) answer: &'r Answer<'c>,
    pub(crate) flags: u16,
    pub(crate) opt: Option<ResponseOpt<'p>>,
    pub(crate) limit: u16,
}

impl Reply<'_, '_, '_> {
    /// The bytes of the OPT record.
    fn opt_len(&self) -> usize {
        self.opt.as_ref().map_or(0, ResponseOpt::len)
    }

    /// Writes the header.
    fn header(&self, out: &mut Vec<u8>, answers: u16, authorities: u16, additionals: u16) {
        let additionals = additionals + u16::from(self.opt.is_some());
        for word in [
            self.query.id,
            self.flags,
            1,
            answers,
            authorities,
            additionals,
        ] {
            out.extend_from_slice(&word.to_be_bytes());
        }
    }

    /// Writes the OPT record, if any (last in the message).
    fn write_opt(&self, out: &mut Vec<u8>) {
        if let Some(opt) = &self.opt {
            opt.write(out);
        }
    }
}

/// Writes `reply` into `out` (cleared first): the common answers directly, any other through
/// hickory's encoder. Returns false, `out` unspecified, when the response exceeds its limit
/// (the full path then truncates it).
pub(crate) fn encode(out: &mut Vec<u8>, reply: &Reply<'_, '_, '_>) -> bool {
    out.clear();
    if encode_addresses(out, reply) || encode_negative(out, reply) {
        return true;
    }
    out.clear();
    encode_any(out, reply).is_ok()
}

/// The common answer, written directly: only A and AAAA records, no authority section. Every
/// record's owner is a pointer to the question: the engine answers records owned by the name
/// asked. Returns false, having written nothing, for any other answer.
fn encode_addresses(out: &mut Vec<u8>, reply: &Reply<'_, '_, '_>) -> bool {
    let (query, answer) = (reply.query, reply.answer);
    if answer.is_negative() || !answer.additionals.is_empty() {
        return false;
    }
    let mut size = HEADER + query.question.len() + reply.opt_len();
    for record in &answer.records {
        size += match fixed_address(record) {
            Some(IpAddr::V4(_)) => 16,
            Some(IpAddr::V6(_)) => 28,
            None => return false,
        };
    }
    if size > usize::from(reply.limit) {
        return false;
    }
    // Fewer than 65 536 / 16 records fit the limit.
    reply.header(out, answer.records.len() as u16, 0, 0);
    out.extend_from_slice(query.question);
    for record in &answer.records {
        debug_assert!(LowerName::new(&record.name) == LowerName::new(&query.name));
        let data: &[u8] = match fixed_address(record) {
            Some(IpAddr::V4(a)) => &a.octets(),
            Some(IpAddr::V6(a)) => &a.octets(),
            None => unreachable!("checked above"),
        };
        out.extend_from_slice(&POINTER_TO_QUESTION.to_be_bytes());
        out.extend_from_slice(&u16::from(record.record_type()).to_be_bytes());
        out.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
        out.extend_from_slice(&record.ttl.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    }
    reply.write_opt(out);
    true
}

/// The address an answer record carries when the fast path writes it itself, by the
/// access-domain record type it answers: addresses (A, AAAA) are written as they are; a CNAME
/// (a compressible name) is left to [`encode_any`]. Exhaustive over the contract's record
/// types: a new one fails to compile here until the fast path decides how it is written.
fn fixed_address(record: &Record) -> Option<IpAddr> {
    match of_qtype(record.record_type())? {
        DomainType::A | DomainType::AAAA => match &record.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        },
        DomainType::CNAME => None,
    }
}

/// A negative answer (NXDOMAIN or NODATA), written directly: the zone's SOA in the authority
/// section, its owner a pointer to the zone's apex inside the question. Returns false, having
/// written nothing, for any other answer.
fn encode_negative(out: &mut Vec<u8>, reply: &Reply<'_, '_, '_>) -> bool {
    let answer = reply.answer;
    let Some(zone) = answer.zone.filter(|_| answer.is_negative()) else {
        return false;
    };
    // The offsets of the question name's labels in the message (no pointers: see `decode`), to
    // point at the apex's.
    let question = reply.query.question;
    let mut labels = [0usize; 128];
    let (mut count, mut at) = (0, 0);
    loop {
        let len = usize::from(question[at]);
        if len == 0 {
            break;
        }
        if count == labels.len() {
            return false;
        }
        labels[count] = HEADER + at;
        count += 1;
        at += 1 + len;
    }
    let apex_labels = usize::from(zone.name.num_labels());
    let Some(apex_at) = count
        .checked_sub(apex_labels)
        .map(|i| if i == count { HEADER + at } else { labels[i] })
    else {
        return false;
    };
    let size = HEADER + question.len() + 2 + zone.soa_wire_after_owner.len() + reply.opt_len();
    if size > usize::from(reply.limit) {
        return false;
    }
    reply.header(out, 0, 1, 0);
    out.extend_from_slice(question);
    out.extend_from_slice(&(0xC000 | apex_at as u16).to_be_bytes());
    out.extend_from_slice(&zone.soa_wire_after_owner);
    reply.write_opt(out);
    true
}

/// Any other answer, through hickory's encoder: the question, the answer records, the SOA in
/// the authority section of a negative answer, the additional records, then the OPT record.
/// Fails when it exceeds `limit`.
fn encode_any(out: &mut Vec<u8>, reply: &Reply<'_, '_, '_>) -> Result<(), ProtoError> {
    let (query, answer) = (reply.query, reply.answer);
    let soa = answer.zone.filter(|_| answer.is_negative()).map(|z| &z.soa);
    let count = |n: usize| u16::try_from(n).map_err(|_| ProtoError::from("too many records"));
    reply.header(
        out,
        count(answer.records.len())?,
        u16::from(soa.is_some()),
        count(answer.additionals.len())?,
    );
    // After the header, names compressed against the message from its start, room kept for the
    // OPT record.
    let mut encoder = BinEncoder::with_offset(out, HEADER as u32);
    encoder.set_max_size(reply.limit.saturating_sub(reply.opt_len() as u16));
    query.name.emit(&mut encoder)?;
    encoder.emit_u16(query.qtype.into())?;
    encoder.emit_u16(DNSClass::IN.into())?;
    for record in answer
        .records
        .iter()
        .copied()
        .chain(soa)
        .chain(answer.additionals)
    {
        record.emit(&mut encoder)?;
    }
    reply.write_opt(out);
    Ok(())
}
