//! A real DNS server on a loopback UDP port, authoritative for one zone held in memory, whose A
//! records a test changes while the gateway runs; it can also be switched to answer SERVFAIL.
//!
//! Built on hickory-server's catalog and in-memory zone, so answers (NXDOMAIN, empty NOERROR with
//! the SOA) are what a real authoritative server sends.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use hickory_server::Server;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::proto::op::{Header, HeaderCounts, MessageType, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType, RrKey};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{
    AxfrPolicy, Catalog, MessageResponseBuilder, ZoneHandler, ZoneType,
};

/// A running DNS server; stops when dropped.
pub struct FakeDns {
    pub addr: SocketAddr,
    zone: Arc<InMemoryZoneHandler<TokioRuntimeProvider>>,
    failing: Arc<AtomicBool>,
    queries: Arc<AtomicU64>,
    serial: AtomicU32,
    _server: Server<Switchable>,
}

impl FakeDns {
    /// Serves the zone `origin` (e.g. `test.`) with nothing but its SOA.
    pub async fn start(origin: &str) -> FakeDns {
        let origin = Name::from_ascii(origin).expect("zone name");
        let mut zone =
            InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(
            Name::from_ascii("ns")
                .expect("ns")
                .append_domain(&origin)
                .expect("ns name"),
            Name::from_ascii("admin")
                .expect("admin")
                .append_domain(&origin)
                .expect("admin name"),
            1,
            3600,
            600,
            86400,
            0,
        );
        assert!(zone.upsert_mut(Record::from_rdata(origin.clone(), 0, RData::SOA(soa)), 1));
        let zone = Arc::new(zone);
        let mut catalog = Catalog::new();
        catalog.upsert(
            LowerName::new(&origin),
            vec![zone.clone() as Arc<dyn ZoneHandler>],
        );
        let failing = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicU64::new(0));
        let handler = Switchable {
            catalog,
            failing: failing.clone(),
            queries: queries.clone(),
        };
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind DNS socket");
        let addr = socket.local_addr().expect("DNS addr");
        let mut server = Server::new(handler);
        server.register_socket(socket);
        FakeDns {
            addr,
            zone,
            failing,
            queries,
            serial: AtomicU32::new(1),
            _server: server,
        }
    }

    /// Makes `addresses` the A records of `host` (a name in the zone); none removes the name.
    pub async fn set_a(&self, host: &str, addresses: &[Ipv4Addr]) {
        let name = Name::from_ascii(host).expect("host name");
        let serial = self.serial.fetch_add(1, Ordering::Relaxed) + 1;
        self.zone
            .records_mut()
            .await
            .remove(&RrKey::new(LowerName::new(&name), RecordType::A));
        for address in addresses {
            let record = Record::from_rdata(name.clone(), 0, RData::A(A(*address)));
            assert!(self.zone.upsert(record, serial).await, "record stored");
        }
    }

    /// From now on, every query is answered SERVFAIL (or, with `false`, from the zone again).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Queries received so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::SeqCst)
    }
}

/// The catalog, or SERVFAIL for everything while `failing` is set.
struct Switchable {
    catalog: Catalog,
    failing: Arc<AtomicBool>,
    queries: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl RequestHandler for Switchable {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        // Counted after the answer is decided, so a test that saw the count move knows the
        // answer it got.
        if !self.failing.load(Ordering::SeqCst) {
            let info = self
                .catalog
                .handle_request::<R, T>(request, response_handle)
                .await;
            self.queries.fetch_add(1, Ordering::SeqCst);
            return info;
        }
        let response = MessageResponseBuilder::new(&request.queries, None)
            .error_msg(&request.metadata, ResponseCode::ServFail);
        let mut metadata = Metadata::new(
            request.metadata.id,
            MessageType::Response,
            request.metadata.op_code,
        );
        metadata.response_code = ResponseCode::ServFail;
        let failed = ResponseInfo::from(Header {
            metadata,
            counts: HeaderCounts::default(),
        });
        let info = response_handle
            .send_response(response)
            .await
            .unwrap_or(failed);
        self.queries.fetch_add(1, Ordering::SeqCst);
        info
    }
}
