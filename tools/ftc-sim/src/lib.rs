//! A stand-in for the FTC's National Do Not Call Registry download service (`docs/ftc-download.md`): SOAP 1.1 over
//! HTTP on a local port, with its WSDL (`GET /?WSDL`), for tests, local runs and anyone evaluating dncflow without an
//! FTC account.
//!
//! - Operations: `Login`, `SubmitDeltaFileRequest`, `GetDeltaFileRequestStatus`, `GetDeltaFileUrl`, `GetURLS`,
//!   `GetDNCFileByUrl`, each answering `{code, value}` (`GetURLS`: an array of strings) in the service's namespace,
//!   the files as base64 zips inside the envelope (a plain GET of a file URL answers 404, as the FTC's does).
//! - Data from a seed: a registry per subscribed area code at the start date, and each day's changes after it (adds
//!   of new numbers, deletes of registered ones, timestamped within their day). The change list requested on day T
//!   holds the changes since the last one delivered, up to day T−1; a full list on day T holds the registry as of the
//!   end of T−1. [`Sim::registered`] answers what the registry holds as of a day, for tests to compare.
//! - Rules of the service: one download per file per day (`AlreadyDownloadedToday`, counted before the answer is
//!   sent), sessions that expire, `RequestPending` for a configured number of polls, `NoChanges` on a day without
//!   changes (a quiet day).
//! - Faults ([`FaultRule`]): any result code answered in place of the real one (`LoginFailed`, `SessionExpired`,
//!   `NoChanges`, …), a zip whose CRC does not match (a byte of its data altered: every line still parses), base64
//!   that does not decode, a SOAP fault, an HTTP 5xx, a slow answer, a connection reset.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::{Days, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// The service's namespace (and `SOAPAction` prefix).
pub const NAMESPACE: &str = "https://telemarketing.donotcall.gov/DownloadSvc/";
const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// What the simulator is told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SimConfig {
    /// Seed of the data and of every random decision.
    pub seed: u64,
    /// The account's company id.
    pub company_id: String,
    /// The account's password: a login with another is answered `LoginFailed`.
    pub password: String,
    /// The subscription's area codes.
    pub area_codes: Vec<u16>,
    /// Numbers registered per area code at the start date.
    pub numbers_per_area: u32,
    /// Adds per day across the subscription.
    pub adds_per_day: u32,
    /// Deletes per day across the subscription.
    pub deletes_per_day: u32,
    /// The day the registry is generated for (default: today, UTC); the simulator's today starts there.
    pub start_date: Option<NaiveDate>,
    /// Days without any change (`NoChanges` for a list covering only them).
    pub quiet_days: Vec<NaiveDate>,
    /// Polls answered `RequestPending` before a change list is ready.
    pub pending_polls: u32,
    /// Calls a session lasts (0: for ever); after them it answers `SessionExpired`.
    pub session_calls: u32,
    /// Faults to inject, each matched against every call of its operation.
    pub faults: Vec<FaultRule>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 26,
            company_id: "SIM-0001".into(),
            password: "sim-password".into(),
            area_codes: vec![202, 415, 818],
            numbers_per_area: 2000,
            adds_per_day: 30,
            deletes_per_day: 12,
            start_date: None,
            quiet_days: Vec::new(),
            pending_polls: 3,
            session_calls: 0,
            faults: Vec::new(),
        }
    }
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum FaultKind {
    /// Answer this result code (`LoginFailed`, `SessionExpired`, `NoChanges`, `AlreadyDownloadedToday`, …) with an
    /// empty value. `SessionExpired` and `InvalidSessionToken` also end the session.
    Code {
        /// The result code's name, as the service spells it.
        code: String,
    },
    /// The file's zip with one byte of its data altered: it opens, its lines parse, its CRC does not match.
    CorruptCrc,
    /// The file's base64 does not decode.
    BadBase64,
    /// HTTP 500 with a `soap:Server` fault.
    SoapFault,
    /// An HTTP status without SOAP (a 503 from a proxy).
    ServerError {
        /// The HTTP status answered (e.g. 503).
        status: u16,
    },
    /// Answer after this long.
    Slow {
        /// The delay, in milliseconds.
        ms: u64,
    },
    /// Close the connection without an answer (after acting: a file is counted as downloaded).
    Reset,
}

/// A fault applied to an operation's next calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// The operation (`Login`, `GetDNCFileByUrl`, …) or `any`.
    pub op: String,
    /// What the fault does: `type` and that kind's parameters, flattened into the rule's JSON.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many calls it applies to (absent: every call).
    #[serde(default)]
    pub count: Option<u32>,
}

/// One call received, as the simulator's call log records it (tests assert on the sequence).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedCall {
    /// The operation called (`Login`, `GetDNCFileByUrl`, …).
    pub op: String,
    /// The code answered (`fault`, `reset`, `http-503` for the others).
    pub answered: String,
}

/// One change of the simulated registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The number's ten digits (area code first), as an integer.
    pub number: u64,
    /// When the change happened: the change list's timestamp for it.
    pub at: NaiveDateTime,
    /// An add (else a delete).
    pub add: bool,
}

struct Request {
    changes: Vec<Change>,
    through: NaiveDate,
    polls_left: u32,
}

struct SimState {
    config: SimConfig,
    start: NaiveDate,
    today: NaiveDate,
    /// Changes of each day after the start, generated in order as days are reached.
    days: Vec<Vec<Change>>,
    /// Registry at the start date.
    base: BTreeMap<u16, BTreeSet<u32>>,
    /// Registry at the end of the last generated day.
    numbers: BTreeMap<u16, BTreeSet<u32>>,
    sessions: HashMap<String, u32>,
    requests: HashMap<String, Request>,
    /// Change lists delivered up to this day.
    delivered_through: NaiveDate,
    downloaded: HashSet<(NaiveDate, String)>,
    faults: Vec<FaultRule>,
    log: Vec<LoggedCall>,
    rng: u64,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A local number with a valid exchange (first digit 2–9).
fn local_number(rng: &mut u64) -> u32 {
    2_000_000 + (splitmix(rng) % 8_000_000) as u32
}

impl SimState {
    fn new(config: SimConfig) -> SimState {
        let start = config.start_date.unwrap_or_else(|| Utc::now().date_naive());
        let mut numbers = BTreeMap::new();
        for &npa in &config.area_codes {
            let mut rng = config.seed ^ (u64::from(npa) << 32);
            let mut set = BTreeSet::new();
            while set.len() < config.numbers_per_area as usize {
                set.insert(local_number(&mut rng));
            }
            numbers.insert(npa, set);
        }
        SimState {
            faults: config.faults.clone(),
            rng: config.seed,
            start,
            today: start,
            days: Vec::new(),
            base: numbers.clone(),
            numbers,
            sessions: HashMap::new(),
            requests: HashMap::new(),
            delivered_through: start,
            downloaded: HashSet::new(),
            log: Vec::new(),
            config,
        }
    }

    fn random(&mut self) -> u64 {
        splitmix(&mut self.rng)
    }

    /// Generate days up to `through` (their changes applied to `numbers`).
    fn generate_through(&mut self, through: NaiveDate) {
        while self.start + Days::new(self.days.len() as u64) < through {
            let day = self.start + Days::new(self.days.len() as u64 + 1);
            let mut changes = Vec::new();
            if !self.config.quiet_days.contains(&day) && !self.config.area_codes.is_empty() {
                let mut rng =
                    self.config.seed ^ (day.to_epoch_days() as u64).wrapping_mul(0x1_0000_0001);
                let areas = self.config.area_codes.clone();
                let at = |rng: &mut u64| {
                    day.and_hms_opt(0, 0, 0).expect("midnight")
                        + chrono::TimeDelta::seconds((splitmix(rng) % 86_400) as i64)
                };
                for _ in 0..self.config.adds_per_day {
                    let npa = areas[(splitmix(&mut rng) % areas.len() as u64) as usize];
                    // A new number: an add of a registered one would not change the registry.
                    let mut local = local_number(&mut rng);
                    while self.numbers[&npa].contains(&local)
                        || changes.iter().any(|c: &Change| {
                            c.number == u64::from(npa) * 10_000_000 + u64::from(local)
                        })
                    {
                        local = local_number(&mut rng);
                    }
                    changes.push(Change {
                        number: u64::from(npa) * 10_000_000 + u64::from(local),
                        at: at(&mut rng),
                        add: true,
                    });
                }
                for _ in 0..self.config.deletes_per_day {
                    let npa = areas[(splitmix(&mut rng) % areas.len() as u64) as usize];
                    let set = &self.numbers[&npa];
                    if set.is_empty() {
                        continue;
                    }
                    let nth = (splitmix(&mut rng) % set.len() as u64) as usize;
                    let local = *set.iter().nth(nth).expect("in range");
                    let number = u64::from(npa) * 10_000_000 + u64::from(local);
                    if changes.iter().any(|c: &Change| c.number == number) {
                        continue;
                    }
                    changes.push(Change {
                        number,
                        at: at(&mut rng),
                        add: false,
                    });
                }
                changes.sort_by_key(|c| c.at);
            }
            for c in &changes {
                let set = self
                    .numbers
                    .get_mut(&((c.number / 10_000_000) as u16))
                    .expect("a subscribed area code");
                let local = (c.number % 10_000_000) as u32;
                if c.add {
                    set.insert(local);
                } else {
                    set.remove(&local);
                }
            }
            self.days.push(changes);
        }
    }

    /// The registry of area code `npa` as of the end of `day`.
    fn registered(&mut self, npa: u16, day: NaiveDate) -> BTreeSet<u32> {
        let mut set = self.base.get(&npa).cloned().unwrap_or_default();
        for c in self.changes_between(self.start, day) {
            if (c.number / 10_000_000) as u16 != npa {
                continue;
            }
            let local = (c.number % 10_000_000) as u32;
            if c.add {
                set.insert(local);
            } else {
                set.remove(&local);
            }
        }
        set
    }

    fn changes_between(&mut self, after: NaiveDate, through: NaiveDate) -> Vec<Change> {
        self.generate_through(through);
        let mut out = Vec::new();
        let mut d = after + Days::new(1);
        while d <= through {
            if d > self.start {
                out.extend_from_slice(&self.days[(d - self.start).num_days() as usize - 1]);
            }
            d = d + Days::new(1);
        }
        out
    }

    fn token(&mut self) -> String {
        let (a, b) = (self.random(), self.random());
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    /// The fault for `op`'s call now, consumed.
    fn take_fault(&mut self, op: &str) -> Option<FaultKind> {
        let i = self
            .faults
            .iter()
            .position(|f| (f.op == op || f.op == "any") && f.count != Some(0))?;
        let rule = &mut self.faults[i];
        if let Some(n) = rule.count.as_mut() {
            *n -= 1;
        }
        Some(rule.kind.clone())
    }
}

/// The simulator's shared state.
#[derive(Clone)]
pub struct Sim {
    state: Arc<Mutex<SimState>>,
    base_url: Arc<Mutex<String>>,
}

impl Sim {
    /// A simulator with `config`.
    pub fn new(config: SimConfig) -> Sim {
        Sim {
            state: Arc::new(Mutex::new(SimState::new(config))),
            base_url: Arc::new(Mutex::new(String::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The simulator's current date (it starts at `start_date`; `advance_days` moves it): what `AlreadyDownloadedToday`
    /// is judged against.
    pub fn today(&self) -> NaiveDate {
        self.lock().today
    }

    /// Move the simulator's today `days` forward.
    pub fn advance_days(&self, days: u64) {
        let mut s = self.lock();
        s.today = s.today + Days::new(days);
    }

    /// Replace the fault rules.
    pub fn set_faults(&self, faults: Vec<FaultRule>) {
        self.lock().faults = faults;
    }

    /// Polls answered `RequestPending` for change lists requested from now on.
    pub fn set_pending_polls(&self, polls: u32) {
        self.lock().config.pending_polls = polls;
    }

    /// End every session (the next call with one answers `SessionExpired`).
    pub fn expire_sessions(&self) {
        for left in self.lock().sessions.values_mut() {
            *left = 0;
        }
    }

    /// The numbers of area code `npa` registered as of the end of `day` (local seven digits).
    pub fn registered(&self, npa: u16, day: NaiveDate) -> BTreeSet<u32> {
        self.lock().registered(npa, day)
    }

    /// The changes of the days after `after` up to `through`.
    pub fn changes_between(&self, after: NaiveDate, through: NaiveDate) -> Vec<Change> {
        self.lock().changes_between(after, through)
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<LoggedCall> {
        self.lock().log.clone()
    }

    /// Calls of `op` received.
    pub fn count(&self, op: &str) -> usize {
        self.lock().log.iter().filter(|c| c.op == op).count()
    }

    /// The HTTP routes: `POST /` (and `POST /DownloadSvc/DownloadSvc.asmx`) for SOAP, `GET` with `?WSDL` for the
    /// WSDL, `GET /files/…` answering 404, `/_sim/` for inspection.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(soap).get(wsdl))
            .route("/DownloadSvc/DownloadSvc.asmx", post(soap).get(wsdl))
            .route("/files/{name}", get(|| async { StatusCode::NOT_FOUND }))
            .route("/_sim/state", get(state))
            .route("/_sim/advance", post(advance))
            .route("/_sim/faults", post(faults))
            .with_state(self.clone())
    }
}

#[derive(Deserialize)]
struct AdvanceQuery {
    days: u64,
}

async fn advance(State(sim): State<Sim>, Query(q): Query<AdvanceQuery>) -> Json<serde_json::Value> {
    sim.advance_days(q.days);
    Json(serde_json::json!({"today": sim.today()}))
}

async fn faults(State(sim): State<Sim>, Json(rules): Json<Vec<FaultRule>>) -> StatusCode {
    sim.set_faults(rules);
    StatusCode::NO_CONTENT
}

async fn state(State(sim): State<Sim>) -> Json<serde_json::Value> {
    let s = sim.lock();
    Json(serde_json::json!({
        "today": s.today,
        "start": s.start,
        "areaCodes": s.config.area_codes,
        "deliveredThrough": s.delivered_through,
        "downloadedToday": s.downloaded.iter().filter(|(d, _)| *d == s.today).map(|(_, f)| f.clone()).collect::<Vec<_>>(),
        "calls": s.log.len(),
    }))
}

#[derive(Deserialize)]
struct WsdlQuery {
    #[serde(rename = "WSDL", alias = "wsdl")]
    wsdl: Option<String>,
}

async fn wsdl(Query(q): Query<WsdlQuery>) -> Response {
    if q.wsdl.is_none() {
        return (
            StatusCode::NOT_FOUND,
            "GET ?WSDL for the service description",
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        wsdl_document(),
    )
        .into_response()
}

/// The operations and their parameters, in order: the WSDL is built from this table.
const OPERATIONS: &[(&str, &[&str], &str)] = &[
    (
        "Login",
        &["strCoID", "strCoPwd", "userType", "enumCertify"],
        "Result",
    ),
    (
        "SubmitDeltaFileRequest",
        &["strCoID", "fileFormat", "strSessionToken"],
        "Result",
    ),
    (
        "GetDeltaFileRequestStatus",
        &["strCoID", "strRequestedFileToken", "strSessionToken"],
        "Result",
    ),
    (
        "GetDeltaFileUrl",
        &["strCoID", "strRequestedFileToken", "strSessionToken"],
        "Result",
    ),
    (
        "GetURLS",
        &["fileFormat", "strSessionToken", "strCoID"],
        "ArrayOfString",
    ),
    (
        "GetDNCFileByUrl",
        &["fileUrl", "strSessionToken", "strCoID"],
        "Result",
    ),
];

/// A WSDL 1.1 document of the operations (document/literal, SOAP 1.1), written with quick-xml's writer.
pub fn wsdl_document() -> String {
    use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event};
    let mut w = quick_xml::Writer::new(Vec::new());
    let open = |w: &mut quick_xml::Writer<Vec<u8>>, name: &str, attrs: &[(&str, &str)]| {
        let mut e = BytesStart::new(name);
        for a in attrs {
            e.push_attribute(*a);
        }
        w.write_event(Event::Start(e)).expect("in memory");
    };
    let close = |w: &mut quick_xml::Writer<Vec<u8>>, name: &str| {
        w.write_event(Event::End(BytesEnd::new(name)))
            .expect("in memory");
    };
    let empty = |w: &mut quick_xml::Writer<Vec<u8>>, name: &str, attrs: &[(&str, &str)]| {
        let mut e = BytesStart::new(name);
        for a in attrs {
            e.push_attribute(*a);
        }
        w.write_event(Event::Empty(e)).expect("in memory");
    };
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
        .expect("in memory");
    open(
        &mut w,
        "wsdl:definitions",
        &[
            ("xmlns:wsdl", "http://schemas.xmlsoap.org/wsdl/"),
            ("xmlns:soap", "http://schemas.xmlsoap.org/wsdl/soap/"),
            ("xmlns:s", "http://www.w3.org/2001/XMLSchema"),
            ("xmlns:tns", NAMESPACE),
            ("targetNamespace", NAMESPACE),
        ],
    );
    open(&mut w, "wsdl:types", &[]);
    open(
        &mut w,
        "s:schema",
        &[
            ("elementFormDefault", "qualified"),
            ("targetNamespace", NAMESPACE),
        ],
    );
    for (name, complex) in [
        ("Result", &["code", "value"][..]),
        ("ArrayOfString", &["string"][..]),
    ] {
        open(&mut w, "s:complexType", &[("name", name)]);
        open(&mut w, "s:sequence", &[]);
        for field in complex {
            let max = if *field == "string" { "unbounded" } else { "1" };
            empty(
                &mut w,
                "s:element",
                &[
                    ("minOccurs", "0"),
                    ("maxOccurs", max),
                    ("name", field),
                    ("type", "s:string"),
                ],
            );
        }
        close(&mut w, "s:sequence");
        close(&mut w, "s:complexType");
    }
    for (op, params, result) in OPERATIONS {
        open(&mut w, "s:element", &[("name", op)]);
        open(&mut w, "s:complexType", &[]);
        open(&mut w, "s:sequence", &[]);
        for p in *params {
            empty(
                &mut w,
                "s:element",
                &[
                    ("minOccurs", "0"),
                    ("maxOccurs", "1"),
                    ("name", p),
                    ("type", "s:string"),
                ],
            );
        }
        close(&mut w, "s:sequence");
        close(&mut w, "s:complexType");
        close(&mut w, "s:element");
        let response = format!("{op}Response");
        let result_name = format!("{op}Result");
        let result_type = format!("tns:{result}");
        open(&mut w, "s:element", &[("name", &response)]);
        open(&mut w, "s:complexType", &[]);
        open(&mut w, "s:sequence", &[]);
        empty(
            &mut w,
            "s:element",
            &[
                ("minOccurs", "0"),
                ("maxOccurs", "1"),
                ("name", &result_name),
                ("type", &result_type),
            ],
        );
        close(&mut w, "s:sequence");
        close(&mut w, "s:complexType");
        close(&mut w, "s:element");
    }
    close(&mut w, "s:schema");
    close(&mut w, "wsdl:types");
    for (op, _, _) in OPERATIONS {
        for (suffix, element) in [
            ("SoapIn", op.to_string()),
            ("SoapOut", format!("{op}Response")),
        ] {
            let name = format!("{op}{suffix}");
            let el = format!("tns:{element}");
            open(&mut w, "wsdl:message", &[("name", &name)]);
            empty(
                &mut w,
                "wsdl:part",
                &[("name", "parameters"), ("element", &el)],
            );
            close(&mut w, "wsdl:message");
        }
    }
    open(&mut w, "wsdl:portType", &[("name", "DownloadSvcSoap")]);
    for (op, _, _) in OPERATIONS {
        let (i, o) = (format!("tns:{op}SoapIn"), format!("tns:{op}SoapOut"));
        open(&mut w, "wsdl:operation", &[("name", op)]);
        empty(&mut w, "wsdl:input", &[("message", &i)]);
        empty(&mut w, "wsdl:output", &[("message", &o)]);
        close(&mut w, "wsdl:operation");
    }
    close(&mut w, "wsdl:portType");
    open(
        &mut w,
        "wsdl:binding",
        &[("name", "DownloadSvcSoap"), ("type", "tns:DownloadSvcSoap")],
    );
    empty(
        &mut w,
        "soap:binding",
        &[("transport", "http://schemas.xmlsoap.org/soap/http")],
    );
    for (op, _, _) in OPERATIONS {
        let action = format!("{NAMESPACE}{op}");
        open(&mut w, "wsdl:operation", &[("name", op)]);
        empty(
            &mut w,
            "soap:operation",
            &[("soapAction", &action), ("style", "document")],
        );
        for io in ["wsdl:input", "wsdl:output"] {
            open(&mut w, io, &[]);
            empty(&mut w, "soap:body", &[("use", "literal")]);
            close(&mut w, io);
        }
        close(&mut w, "wsdl:operation");
    }
    close(&mut w, "wsdl:binding");
    open(&mut w, "wsdl:service", &[("name", "DownloadSvc")]);
    open(
        &mut w,
        "wsdl:port",
        &[
            ("name", "DownloadSvcSoap"),
            ("binding", "tns:DownloadSvcSoap"),
        ],
    );
    empty(
        &mut w,
        "soap:address",
        &[(
            "location",
            "https://telemarketing.donotcall.gov/DownloadSvc/DownloadSvc.asmx",
        )],
    );
    close(&mut w, "wsdl:port");
    close(&mut w, "wsdl:service");
    close(&mut w, "wsdl:definitions");
    String::from_utf8(w.into_inner()).expect("UTF-8")
}

// --- Requests, read by their elements' local names.

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Args {
    #[serde(rename = "strCoID")]
    company_id: String,
    #[serde(rename = "strCoPwd")]
    password: String,
    #[serde(rename = "userType")]
    user_type: String,
    #[serde(rename = "enumCertify")]
    certify: String,
    #[serde(rename = "fileFormat")]
    file_format: String,
    #[serde(rename = "strSessionToken")]
    session: String,
    #[serde(rename = "strRequestedFileToken")]
    file_token: String,
    #[serde(rename = "fileUrl")]
    file_url: String,
}

#[derive(Debug, Deserialize)]
enum RequestContent {
    Login(Args),
    SubmitDeltaFileRequest(Args),
    GetDeltaFileRequestStatus(Args),
    GetDeltaFileUrl(Args),
    #[serde(rename = "GetURLS")]
    GetUrls(Args),
    #[serde(rename = "GetDNCFileByUrl")]
    GetDncFileByUrl(Args),
}

#[derive(Debug, Deserialize)]
struct RequestBody {
    #[serde(rename = "$value")]
    content: RequestContent,
}

#[derive(Debug, Deserialize)]
struct RequestEnvelope {
    #[serde(rename = "Body")]
    body: RequestBody,
}

// --- Answers.

#[derive(Serialize)]
struct CodeValue {
    code: String,
    value: String,
}

#[derive(Serialize)]
struct Strings {
    string: Vec<String>,
}

#[derive(Serialize)]
enum ResponseContent {
    #[serde(rename = "soap:Fault")]
    Fault {
        faultcode: String,
        faultstring: String,
    },
    LoginResponse {
        #[serde(rename = "@xmlns")]
        xmlns: &'static str,
        #[serde(rename = "LoginResult")]
        result: CodeValue,
    },
    SubmitDeltaFileRequestResponse {
        #[serde(rename = "@xmlns")]
        xmlns: &'static str,
        #[serde(rename = "SubmitDeltaFileRequestResult")]
        result: CodeValue,
    },
    GetDeltaFileRequestStatusResponse {
        #[serde(rename = "@xmlns")]
        xmlns: &'static str,
        #[serde(rename = "GetDeltaFileRequestStatusResult")]
        result: CodeValue,
    },
    GetDeltaFileUrlResponse {
        #[serde(rename = "@xmlns")]
        xmlns: &'static str,
        #[serde(rename = "GetDeltaFileUrlResult")]
        result: CodeValue,
    },
    #[serde(rename = "GetDNCFileByUrlResponse")]
    GetDncFileByUrlResponse {
        #[serde(rename = "@xmlns")]
        xmlns: &'static str,
        #[serde(rename = "GetDNCFileByUrlResult")]
        result: CodeValue,
    },
    #[serde(rename = "GetURLSResponse")]
    Urls {
        #[serde(rename = "@xmlns")]
        xmlns: &'static str,
        #[serde(rename = "GetURLSResult")]
        result: Strings,
    },
}

#[derive(Serialize)]
#[serde(rename = "soap:Envelope")]
struct ResponseEnvelope {
    #[serde(rename = "@xmlns:soap")]
    soap: &'static str,
    #[serde(rename = "soap:Body")]
    body: ResponseBody,
}

#[derive(Serialize)]
struct ResponseBody {
    #[serde(rename = "$value")]
    content: ResponseContent,
}

fn envelope(content: ResponseContent) -> String {
    let xml = quick_xml::se::to_string(&ResponseEnvelope {
        soap: SOAP_ENV,
        body: ResponseBody { content },
    })
    .expect("answers serialize");
    format!(r#"<?xml version="1.0" encoding="utf-8"?>{xml}"#)
}

/// The `{code, value}` answer of `op` (`<op>Response/<op>Result`).
fn code_answer(op: &str, code: &str, value: String) -> String {
    let result = CodeValue {
        code: code.to_string(),
        value,
    };
    let xmlns = NAMESPACE;
    envelope(match op {
        "Login" => ResponseContent::LoginResponse { xmlns, result },
        "SubmitDeltaFileRequest" => {
            ResponseContent::SubmitDeltaFileRequestResponse { xmlns, result }
        }
        "GetDeltaFileRequestStatus" => {
            ResponseContent::GetDeltaFileRequestStatusResponse { xmlns, result }
        }
        "GetDeltaFileUrl" => ResponseContent::GetDeltaFileUrlResponse { xmlns, result },
        _ => ResponseContent::GetDncFileByUrlResponse { xmlns, result },
    })
}

fn fault_answer(message: &str) -> String {
    envelope(ResponseContent::Fault {
        faultcode: "soap:Server".into(),
        faultstring: message.into(),
    })
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// What the handler decided, before faults that act on the transport.
enum Outcome {
    Code(String, String),
    Strings(Vec<String>),
}

async fn soap(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let parsed: Result<RequestEnvelope, _> = quick_xml::de::from_str(&text);
    let Ok(envelope_in) = parsed else {
        let e = parsed.err().map(|e| e.to_string()).unwrap_or_default();
        return xml_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            envelope(ResponseContent::Fault {
                faultcode: "soap:Client".into(),
                faultstring: format!("Server was unable to read request: {e}"),
            }),
        );
    };
    let (op, args) = match envelope_in.body.content {
        RequestContent::Login(a) => ("Login", a),
        RequestContent::SubmitDeltaFileRequest(a) => ("SubmitDeltaFileRequest", a),
        RequestContent::GetDeltaFileRequestStatus(a) => ("GetDeltaFileRequestStatus", a),
        RequestContent::GetDeltaFileUrl(a) => ("GetDeltaFileUrl", a),
        RequestContent::GetUrls(a) => ("GetURLS", a),
        RequestContent::GetDncFileByUrl(a) => ("GetDNCFileByUrl", a),
    };
    // The SOAPAction names the operation the body holds (ASP.NET dispatches on it).
    let action = headers
        .get("SOAPAction")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_matches('"')
        .to_string();
    if action != format!("{NAMESPACE}{op}") {
        return xml_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            envelope(ResponseContent::Fault {
                faultcode: "soap:Client".into(),
                faultstring: format!(
                    "Server did not recognize the value of HTTP Header SOAPAction: {action}."
                ),
            }),
        );
    }
    let base = sim.base_url.lock().map(|b| b.clone()).unwrap_or_default();
    let fault = sim.lock().take_fault(op);
    if let Some(FaultKind::Slow { ms }) = fault {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let log = |answered: &str| {
        sim.lock().log.push(LoggedCall {
            op: op.to_string(),
            answered: answered.to_string(),
        });
    };
    match &fault {
        Some(FaultKind::SoapFault) => {
            log("fault");
            return xml_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                fault_answer("Server was unable to process request. ---> Timeout expired."),
            );
        }
        Some(FaultKind::ServerError { status }) => {
            log(&format!("http-{status}"));
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return (status, "Service Unavailable").into_response();
        }
        Some(FaultKind::Code { code }) => {
            let mut s = sim.lock();
            if matches!(code.as_str(), "SessionExpired" | "InvalidSessionToken") {
                s.sessions.remove(&args.session);
            }
            drop(s);
            log(code);
            return xml_response(StatusCode::OK, code_answer(op, code, String::new()));
        }
        _ => {}
    }
    let outcome = {
        let mut s = sim.lock();
        handle(&mut s, op, &args, &base, fault.as_ref())
    };
    let (answered, body) = match outcome {
        Outcome::Code(code, value) => (code.clone(), code_answer(op, &code, value)),
        Outcome::Strings(items) => (
            "strings".to_string(),
            envelope(ResponseContent::Urls {
                xmlns: NAMESPACE,
                result: Strings { string: items },
            }),
        ),
    };
    if matches!(fault, Some(FaultKind::Reset)) {
        log("reset");
        // A body that fails at once: the connection is closed without an answer, after the call was acted on.
        let stream = futures::stream::once(async {
            Err::<Bytes, _>(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "simulated connection reset",
            ))
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(Body::from_stream(stream))
            .expect("a response");
    }
    log(&answered);
    xml_response(StatusCode::OK, body)
}

fn handle(s: &mut SimState, op: &str, a: &Args, base: &str, fault: Option<&FaultKind>) -> Outcome {
    let code = |c: &str| Outcome::Code(c.to_string(), String::new());
    if op == "Login" {
        if a.company_id != s.config.company_id {
            return code("InvalidCompanyID");
        }
        if a.password != s.config.password {
            return code("LoginFailed");
        }
        if a.certify != "Agree" {
            return code("CertificationNotAgreed");
        }
        if !matches!(
            a.user_type.as_str(),
            "Representative" | "Downloader" | "Unknown"
        ) {
            return code("InvalidRequest");
        }
        let token = s.token();
        let calls = if s.config.session_calls == 0 {
            u32::MAX
        } else {
            s.config.session_calls
        };
        s.sessions.insert(token.clone(), calls);
        return Outcome::Code("LoginOK".into(), token);
    }
    // Every other operation needs a live session.
    match s.sessions.get_mut(&a.session) {
        None => return code("InvalidSessionToken"),
        Some(0) => {
            s.sessions.remove(&a.session);
            return code("SessionExpired");
        }
        Some(left) => *left -= 1,
    }
    if a.company_id != s.config.company_id {
        return code("InvalidCompanyID");
    }
    let today = s.today;
    let yesterday = today - Days::new(1);
    match op {
        "SubmitDeltaFileRequest" => {
            if a.file_format != "Flat" {
                return code("InvalidRequest");
            }
            if s.downloaded.contains(&(today, "changes".into())) {
                return code("AlreadyDownloadedToday");
            }
            let changes = s.changes_between(s.delivered_through, yesterday);
            let token = s.token();
            let polls_left = s.config.pending_polls;
            s.requests.insert(
                token.clone(),
                Request {
                    changes,
                    through: yesterday,
                    polls_left,
                },
            );
            Outcome::Code("SubmitOK".into(), token)
        }
        "GetDeltaFileRequestStatus" => {
            let Some(r) = s.requests.get_mut(&a.file_token) else {
                return code("InvalidFileReqToken");
            };
            if r.polls_left > 0 {
                r.polls_left -= 1;
                return code("RequestPending");
            }
            if r.changes.is_empty() {
                let through = r.through;
                s.delivered_through = s.delivered_through.max(through);
                return code("NoChanges");
            }
            code("RequestCompleted")
        }
        "GetDeltaFileUrl" => {
            let Some(r) = s.requests.get(&a.file_token) else {
                return code("InvalidFileReqToken");
            };
            if r.polls_left > 0 || r.changes.is_empty() {
                return code("FileNotValidForDownload");
            }
            Outcome::Code(
                "DownloadOK".into(),
                format!(
                    "{base}/files/{}_changes_{}.txt.zip",
                    date_name(today),
                    a.file_token
                ),
            )
        }
        "GetURLS" => {
            let mut out = Vec::new();
            for npa in s.config.area_codes.clone() {
                if s.downloaded.contains(&(today, npa.to_string())) {
                    out.push("714:File was already downloaded Today.Only one download allowed per day per file".into());
                } else {
                    let t = s.token();
                    out.push(format!(
                        "{base}/files/{}_{npa}_{t}.txt.zip",
                        date_name(today)
                    ));
                }
            }
            Outcome::Strings(out)
        }
        "GetDNCFileByUrl" => {
            let name = a
                .file_url
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let mut parts = name.split('_');
            let (Some(_date), Some(what), Some(token)) = (parts.next(), parts.next(), parts.next())
            else {
                return code("FileNotValidForDownload");
            };
            let token = token.trim_end_matches(".txt.zip").to_string();
            let file = what.to_string();
            if s.downloaded.contains(&(today, file.clone())) {
                return code("AlreadyDownloadedToday");
            }
            let (entry, text) = if file == "changes" {
                let Some(r) = s.requests.remove(&token) else {
                    return code("FileNotValidForDownload");
                };
                s.delivered_through = s.delivered_through.max(r.through);
                let mut text = String::new();
                for c in &r.changes {
                    text.push_str(&format!(
                        "{},{},{}\n",
                        c.number,
                        c.at.format("%Y-%m-%dT%H:%M:%S"),
                        if c.add { 'A' } else { 'D' }
                    ));
                }
                (format!("{}_changes.txt", date_name(today)), text)
            } else {
                let Ok(npa) = file.parse::<u16>() else {
                    return code("FileNotValidForDownload");
                };
                if !s.config.area_codes.contains(&npa) {
                    return code("FileNotValidForDownload");
                }
                let mut text = String::new();
                for local in s.registered(npa, yesterday) {
                    text.push_str(&format!("{npa:03},{local:07}\n"));
                }
                (format!("{}_{npa}.txt", date_name(today)), text)
            };
            // Counted before the answer leaves: a reset after this loses the file for the day, as on the FTC's.
            s.downloaded.insert((today, file));
            let zip = zip_of(
                &entry,
                text.as_bytes(),
                matches!(fault, Some(FaultKind::CorruptCrc)),
            );
            let b64 = if matches!(fault, Some(FaultKind::BadBase64)) {
                "UEsDBB@@not-base64@@".to_string()
            } else {
                base64::engine::general_purpose::STANDARD.encode(zip)
            };
            Outcome::Code("DownloadOK".into(), b64)
        }
        _ => code("InvalidRequest"),
    }
}

/// `2026-8-5`: the FTC's file names carry the date without zero padding.
fn date_name(d: NaiveDate) -> String {
    use chrono::Datelike;
    format!("{}-{}-{}", d.year(), d.month(), d.day())
}

/// A zip of one entry. `corrupt`: stored (not deflated) and one digit of its data altered after the CRC was computed,
/// so the file opens and its lines parse but the CRC check fails: the damage only a CRC tells.
fn zip_of(name: &str, text: &[u8], corrupt: bool) -> Vec<u8> {
    let method = if corrupt {
        zip::CompressionMethod::Stored
    } else {
        zip::CompressionMethod::Deflated
    };
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut out);
        w.start_file(
            name,
            zip::write::SimpleFileOptions::default().compression_method(method),
        )
        .expect("in memory");
        w.write_all(text).expect("in memory");
        w.finish().expect("in memory");
    }
    let mut bytes = out.into_inner();
    if corrupt && !text.is_empty() {
        // The local header is 30 bytes plus the name; alter the last digit of the first line.
        let data = 30 + name.len();
        if let Some(i) = bytes[data..data + text.len()]
            .iter()
            .position(|b| *b == b'\n')
        {
            let at = data + i - 1;
            if bytes[at].is_ascii_digit() {
                bytes[at] = if bytes[at] == b'9' {
                    b'0'
                } else {
                    bytes[at] + 1
                };
            } else {
                // A change line ends with A/D: alter a digit of the number instead.
                bytes[data] = if bytes[data] == b'9' {
                    b'2'
                } else {
                    bytes[data] + 1
                };
            }
        }
    }
    bytes
}

/// A simulator serving on a loopback port.
pub struct RunningSim {
    /// `http://127.0.0.1:PORT` (the SOAP endpoint).
    pub base_url: String,
    /// The address the simulator listens on (`127.0.0.1`, the port asked for or an ephemeral one).
    pub addr: SocketAddr,
    /// The simulator's state: tests advance its clock, change its faults, and read its registry and call log while it
    /// runs.
    pub sim: Sim,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RunningSim {
    /// The credentials document of the simulator's account (`{"companyId","password","userType","endpoint"}`).
    pub fn credentials_document(&self) -> String {
        let s = self.sim.lock();
        serde_json::json!({
            "companyId": s.config.company_id,
            "password": s.config.password,
            "userType": "Downloader",
            "endpoint": self.base_url,
        })
        .to_string()
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Start a simulator on `127.0.0.1:port` (0: ephemeral) in the current Tokio runtime.
pub async fn spawn(config: SimConfig, port: u16) -> std::io::Result<RunningSim> {
    let sim = Sim::new(config);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    *sim.base_url.lock().unwrap_or_else(|e| e.into_inner()) = base_url.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = sim.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(RunningSim {
        base_url,
        addr,
        sim,
        shutdown: Some(tx),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_deterministic_and_changes_follow_the_registry() {
        let start: NaiveDate = "2026-11-01".parse().unwrap();
        let config = SimConfig {
            start_date: Some(start),
            ..SimConfig::default()
        };
        let a = Sim::new(config.clone());
        let b = Sim::new(config);
        let d3 = start + Days::new(3);
        assert_eq!(a.registered(818, d3), b.registered(818, d3));
        assert_eq!(a.registered(818, start).len(), 2000);
        let changes = a.changes_between(start, d3);
        assert_eq!(changes.len(), 3 * (30 + 12));
        // The registry of day 3 is day 0's with the changes applied, in order.
        let mut set = a.registered(818, start);
        for c in changes.iter().filter(|c| c.number / 10_000_000 == 818) {
            let local = (c.number % 10_000_000) as u32;
            if c.add {
                set.insert(local);
            } else {
                assert!(set.remove(&local), "a delete of a registered number");
            }
        }
        assert_eq!(set, a.registered(818, d3));
        // Asked in another order, the same.
        let c = Sim::new(SimConfig {
            start_date: Some(start),
            ..SimConfig::default()
        });
        c.changes_between(start, d3 + Days::new(5));
        assert_eq!(c.registered(818, d3), a.registered(818, d3));
    }

    #[test]
    fn the_wsdl_names_every_operation() {
        let w = wsdl_document();
        for (op, _, _) in OPERATIONS {
            assert!(
                w.contains(&format!("soapAction=\"{NAMESPACE}{op}\"")),
                "{op}"
            );
        }
    }

    #[test]
    fn answers_carry_the_operation_element() {
        let x = code_answer("GetDeltaFileUrl", "DownloadOK", "https://x/y".into());
        assert!(x.contains("<GetDeltaFileUrlResponse xmlns=\"https://telemarketing.donotcall.gov/DownloadSvc/\"><GetDeltaFileUrlResult><code>DownloadOK</code><value>https://x/y</value></GetDeltaFileUrlResult></GetDeltaFileUrlResponse>"), "{x}");
    }
}
