//! The hickory [`RequestHandler`]: decodes what the engine needs from a request, asks the
//! engine, and encodes the answer with the DNS behaviour of design.md (AA, negative answers
//! with the SOA, REFUSED outside the zones, EDNS and ECS, FORMERR, NOTIMP, SERVFAIL before the
//! first config). Truncation (TC) to the client's UDP payload size is done by hickory's
//! encoder; clients then retry over TCP.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, LowerQuery, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_server::proto::rr::{DNSClass, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use ipnet::IpNet;

use crate::engine::Rcode;
use crate::geoip::GeoIp;
use crate::metrics::DomainCounters;
use crate::sources::Client;
use crate::state::{Shared, Snapshot};

/// The EDNS version this server speaks.
const EDNS_VERSION: u8 = 0;

/// Answers queries from the current snapshot of [`Shared`].
#[derive(Clone, Debug)]
pub struct GtmHandler {
    shared: Arc<Shared>,
    geoip: Option<Arc<GeoIp>>,
}

impl GtmHandler {
    /// A handler answering from `shared`, locating clients with `geoip` when given.
    pub fn new(shared: Arc<Shared>, geoip: Option<Arc<GeoIp>>) -> Self {
        Self { shared, geoip }
    }
}

/// What a query is answered from, decoded from the request.
enum Source {
    /// No ECS option: the resolver's address.
    Resolver(IpAddr),
    /// An ECS option; source prefix 0 means "do not locate me".
    Ecs(ClientSubnet),
}

/// The ECS option of a request; `Err` when it is malformed (address bits set beyond the source
/// prefix, RFC 7871 section 6).
fn client_subnet(request: &Request) -> Result<Option<ClientSubnet>, ()> {
    let Some(EdnsOption::Subnet(subnet)) = request
        .edns
        .as_ref()
        .and_then(|e| e.option(EdnsCode::Subnet))
    else {
        return Ok(None);
    };
    let net = IpNet::new(subnet.addr(), subnet.source_prefix()).map_err(|_| ())?;
    if net.trunc().addr() != subnet.addr() {
        return Err(());
    }
    Ok(Some(*subnet))
}

#[async_trait::async_trait]
impl RequestHandler for GtmHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = Instant::now();
        let mut edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(EDNS_VERSION);
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
        let answer = if query.query_class() == DNSClass::IN || query.query_class() == DNSClass::ANY
        {
            Some(self.answer(&snapshot, query.name(), qtype, &source))
        } else {
            None
        };
        let (records, soa, domain, scope) = match &answer {
            Some(a) => {
                metadata.response_code = match a.rcode {
                    Rcode::NoError => ResponseCode::NoError,
                    Rcode::NxDomain => ResponseCode::NXDomain,
                    Rcode::Refused => ResponseCode::Refused,
                };
                metadata.authoritative = a.zone.is_some();
                let soa = a.zone.filter(|_| a.is_negative()).map(|z| &z.soa);
                (a.records.as_slice(), soa, a.domain, a.ecs_scope)
            }
            None => {
                metadata.response_code = ResponseCode::Refused;
                (&[][..], None, None, 0)
            }
        };
        if let (Source::Ecs(subnet), Some(e)) = (&source, edns.as_mut()) {
            let scope = if subnet.source_prefix() == 0 {
                0
            } else {
                scope
            };
            e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                subnet.addr(),
                subnet.source_prefix(),
                scope,
            )));
        }
        let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            metadata,
            records.iter().copied(),
            std::iter::empty::<&Record>(),
            soa,
            std::iter::empty::<&Record>(),
        );
        let info = send(&mut response_handle, response, &request.metadata).await;
        let counters = domain.map(|d| snapshot.counters[d].as_ref());
        self.finish(counters, qtype, info.response_code, started);
        info
    }
}

impl GtmHandler {
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
        let ecs = client_subnet(request).map_err(|()| ResponseCode::FormErr)?;
        let snapshot = self.shared.snapshot().ok_or(ResponseCode::ServFail)?;
        Ok((query, snapshot, ecs))
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
