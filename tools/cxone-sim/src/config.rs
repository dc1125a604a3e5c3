//! What the simulator is told: the dialect, rates, clock, clients and the fault rules.

use super::*;

/// Which endpoint a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// `POST /oauth/token`.
    Token,
    /// `/api/v2/dnc/lists…`.
    Lists,
    /// `/api/v2/dnc/rules…`.
    Rules,
    /// `POST /api/v2/dnc/entries`.
    EntriesPost,
    /// `GET /api/v2/dnc/entries`.
    EntriesGet,
    /// `POST /api/v2/dnc/contacts/batch`.
    Contacts,
    /// Every CXone endpoint.
    Any,
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum FaultKind {
    /// Answer 429, with `Retry-After` seconds if given.
    TooManyRequests {
        /// Seconds to send in `Retry-After` (None: no header, the client's own backoff decides).
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Answer this 5xx status without doing anything.
    ServerError {
        /// The status (500, 502, 503, 504).
        status: u16,
    },
    /// Wait this long before handling.
    Slow {
        /// The delay, in milliseconds (the simulator's clock scale does not apply).
        ms: u64,
    },
    /// Drop the connection without a complete response.
    Reset,
    /// Apply the write, then answer 503 (the client must retry without creating duplicates).
    AppliedThen503,
    /// Expire every issued token now (token expiry mid-run), then handle the request normally.
    ExpireTokens,
    /// Answer each entry of a batch `created` with this probability but store nothing (a lost write, for
    /// reconciliation to find).
    LoseWrites {
        /// Probability (0 to 1, drawn per entry from the seed) that an entry is answered created but not stored.
        per_entry: f64,
    },
    /// Answer a contacts check with its `results` tampered with, as a faulty gateway or CXone might: `reverse` their
    /// order, or `renumber` (the first result names a number that was not asked).
    TamperResults {
        /// `reverse` or `renumber`.
        mode: String,
    },
    /// Reject each entry of a batch with this probability and code (partial success).
    RejectEntries {
        /// Error code, e.g. `INVALID_PHONE_NUMBER`.
        code: String,
        /// Probability (0 to 1, drawn per entry from the seed) that an entry is rejected.
        per_entry: f64,
    },
}

/// One fault injection rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Endpoint it applies to.
    pub endpoint: Endpoint,
    /// What the rule does: `type` and that kind's parameters, flattened into the rule's JSON.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Probability per matching request (deterministic for the seed).
    #[serde(default = "one")]
    pub probability: f64,
    /// Let this many matching requests pass first.
    #[serde(default)]
    pub after: u64,
    /// Fire at most this many times (a burst); unlimited when absent.
    #[serde(default)]
    pub count: Option<u64>,
}

fn one() -> f64 {
    1.0
}

/// Simulator configuration: the JSON of `--config` (every field has a default; flags override some).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SimConfig {
    /// Seed of every random decision.
    pub seed: u64,
    /// OAuth clients: `(client id, client secret)`.
    pub clients: Vec<(String, String)>,
    /// Token lifetime, simulated seconds.
    pub token_ttl_secs: u64,
    /// Token requests allowed per client per (real) minute.
    pub token_requests_per_minute: u32,
    /// Requests per second for entries, lists and rules.
    pub entries_rate: f64,
    /// Requests per second for the contacts check.
    pub check_rate: f64,
    /// Propagation delay range, simulated seconds.
    pub propagation_secs: (u64, u64),
    /// Simulated seconds per real second.
    pub clock_scale: f64,
    /// Entries accepted in one write request (the contract says 100; lower it to exercise 413 handling).
    pub max_entries_per_request: usize,
    /// Fault rules (also `--fault`, repeatable), each matched against every request to its endpoint.
    pub faults: Vec<FaultRule>,
    /// The API served: the contract's `v2`, or the Admin API's DNC groups ([`admin`]).
    pub dialect: SimDialect,
    /// Admin: access keys accepted by the password grant, `(access key id, access key secret)`.
    pub access_keys: Vec<(String, String)>,
    /// Admin: the tenant id the tokens name (API discovery looks it up).
    pub tenant_id: String,
    /// Admin: records held by calling lists (they count against the environment's cap).
    pub calling_list_records: u64,
    /// Admin: records an environment holds at most, calling lists and DNC groups together.
    pub capacity: u64,
    /// Admin: how the tenant answers where NICE's published material is silent.
    pub admin: AdminBehaviour,
}

/// How the simulated Admin API behaves where no public description says (each way a real tenant might): the client
/// is tested against every combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AdminBehaviour {
    /// How `formattedPhone` writes a number.
    pub formatted_phone: PhoneFormat,
    /// Which JSON type a written record's `phoneNumber` must have (a write with the other is refused whole, 400).
    pub phone_number_type: PhoneNumberType,
    /// Whether a new group starts active.
    pub new_group_active: bool,
    /// What adding a number the group holds (unexpired) does.
    pub held_number: HeldNumber,
    /// The status refusing a write above `maxEntriesPerRequest`: 413, or 400 as some gateways answer.
    pub too_large_status: u16,
}

impl Default for AdminBehaviour {
    fn default() -> Self {
        AdminBehaviour {
            formatted_phone: PhoneFormat::Parenthesized,
            phone_number_type: PhoneNumberType::Either,
            new_group_active: false,
            held_number: HeldNumber::Upsert,
            too_large_status: 413,
        }
    }
}

/// `formattedPhone`'s format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhoneFormat {
    /// `(202) 555-0198`, as the published samples show.
    Parenthesized,
    /// `2025550198`.
    Digits,
    /// `+12025550198`.
    E164,
    /// `1-202-555-0198`.
    Dashed,
}

/// The JSON type a record's `phoneNumber` must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhoneNumberType {
    /// A JSON number (as one published client types it).
    Number,
    /// A string of digits.
    String,
    /// A number or a string.
    Either,
}

/// Adding a number a group already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeldNumber {
    /// Succeeds, keeping the later expiration.
    Upsert,
    /// Fails that record (`"Phone number already exists in the DNC group"`), changing nothing.
    Error,
}

/// Which API the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SimDialect {
    /// The contract's `v2` (lists, rules, entries, batch check).
    #[default]
    V2,
    /// The CXone Admin API's DNC groups.
    Admin,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            clients: vec![("dncflow-local".into(), "local-secret".into())],
            token_ttl_secs: 3600,
            token_requests_per_minute: 60,
            entries_rate: 50.0,
            check_rate: 100.0,
            propagation_secs: (60, 120),
            clock_scale: 1.0,
            max_entries_per_request: 100,
            faults: Vec::new(),
            dialect: SimDialect::V2,
            access_keys: vec![("dncflow-access-key".into(), "local-access-secret".into())],
            tenant_id: "11EB0000-SIM0-TENANT".into(),
            calling_list_records: 0,
            capacity: 1_000_000,
            admin: AdminBehaviour::default(),
        }
    }
}
