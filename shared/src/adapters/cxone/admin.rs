//! The `admin` dialect client: the CXone Admin API's DNC groups, in the shapes NICE publishes
//! (`docs/cxone-api.md`; a sample of every answer in `docs/cxone-admin/samples/`, decoded by this module's
//! tests), over the same [`RequestPolicy`] as `v2`.
//!
//! A group stands for a list (its id the group's number); suppression is the group being active and scrubbed by at
//! least one active outbound skill; records are ten-digit North American numbers with an optional expiration, no
//! jurisdiction, source or idempotency key. A write whose answer was lost is settled by reading the group back
//! (reconcile). There is no batch check: the canary searches numbers one by one, and `check` answers from what
//! dncflow has verified.
//!
//! What no public description settles, the client works with either way (each is a setting of the simulator, and
//! the tests run the client against every combination): the format of `formattedPhone` (results are paired on the
//! last ten digits it holds); `phoneNumber` sent as a JSON number (as one published client types it) or a string
//! (the other form is tried once when a write is refused whole or every record of it fails, and the form that worked
//! is kept); a new group active or not (activated when it is not); adding a held number an upsert or a per-record
//! error (an error saying the number exists is taken as held, and reconcile counts a refused number CXone holds as
//! held); the largest batch accepted (`max_batch`, halved on 413 or 400).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};

use reqwest::Method;
use serde_json::{json, Value};

use super::auth::CredentialSource;
use super::policy::{ClientConfig, Repeat, RequestPolicy};
use super::{
    path_segment, Capabilities, CxoneError, Dialect, DncApi, DncList, EntryInput, EntryOutcome,
    EntryPage, Holdings, NewList, NumberFormat, RemoteEntry, Suppression, MAX_PAGE,
};

/// The client of the CXone Admin API's DNC groups (what real tenants expose; no batch check).
pub struct AdminClient {
    policy: RequestPolicy,
    /// How `phoneNumber` is written: [`UNSETTLED`] (as a number, the other form tried on refusal), [`AS_NUMBER`] or
    /// [`AS_STRING`] once a write succeeded that way.
    encoding: AtomicU8,
}

const UNSETTLED: u8 = 0;
const AS_NUMBER: u8 = 1;
const AS_STRING: u8 = 2;

/// The kind of a JSON value, for errors that must not quote it (it may be a phone number).
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
/// The Admin API's answers, in the shapes NICE publishes (`docs/cxone-api.md`, which says where each shape was
/// found, with a JSON sample of each in `docs/cxone-admin/samples/`). Every field the client does not need is left
/// out; every field marked optional in a published description is optional here, and an id is read whether it comes
/// as a JSON number (as published) or a string.
pub mod wire {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// An id: a JSON number in every published shape, accepted as a string too; held as its decimal text.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct Id(pub String);

    impl<'de> Deserialize<'de> for Id {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
            match Value::deserialize(d)? {
                Value::String(s) if !s.trim().is_empty() => Ok(Id(s.trim().to_string())),
                Value::Number(n) => Ok(Id(n.to_string())),
                other => Err(serde::de::Error::custom(format!(
                    "an id is a number or a string, not {}",
                    super::json_kind(&other)
                ))),
            }
        }
    }

    /// A flag published as a boolean, tolerated as `"true"`/`"false"` (the records' results are typed loosely).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Flag(pub bool);

    impl<'de> Deserialize<'de> for Flag {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flag, D::Error> {
            match Value::deserialize(d)? {
                Value::Bool(b) => Ok(Flag(b)),
                Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Flag(true)),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Flag(false)),
                other => Err(serde::de::Error::custom(format!(
                    "a flag is a boolean, not {}",
                    super::json_kind(&other)
                ))),
            }
        }
    }

    /// A DNC group (`GET /dnc-groups`, `POST /dnc-groups`, `GET /dnc-groups/{id}`).
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Group {
        /// `dncGroupId`: the group's id, a number or a string on the wire; what records and skills name.
        pub dnc_group_id: Id,
        /// `dncGroupName`: unique in the tenant, what `--list` names (empty when absent).
        #[serde(default)]
        pub dnc_group_name: String,
        /// `dncGroupDescription` (typed a number in one published search result: read as any value).
        #[serde(default)]
        pub dnc_group_description: Option<Value>,
        /// `validRecords`: the records CXone counts valid (None when not given; holdings count records by listing
        /// instead).
        #[serde(default)]
        pub valid_records: Option<u64>,
        /// `isActive`: None (not said) is not taken for active.
        #[serde(default)]
        pub is_active: Option<bool>,
        /// `isRemoved`: a removed group holds nothing that suppresses.
        #[serde(default)]
        pub is_removed: Option<bool>,
    }

    /// A set of groups, the body inside `resultSet`: `{"totalGroups"?, "dncGroups"?: [group]}`.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct GroupSet {
        /// `totalGroups`: every group of the tenant (given by `GET /dnc-groups` only).
        #[serde(default)]
        pub total_groups: Option<u64>,
        /// `dncGroups`: the groups (empty when absent).
        #[serde(default)]
        pub dnc_groups: Vec<Group>,
    }

    /// `GET /dnc-groups` → `{"resultSet": {"totalGroups", "dncGroups"}}`. `resultSet` is required: an answer without
    /// it is not "no groups" but a shape this client does not know (it would otherwise create a group that exists).
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct GroupsAnswer {
        /// `resultSet`, required (see above).
        pub result_set: GroupSet,
    }

    /// `GET /dnc-groups/{id}` → `{"resultSet"?: {"dncGroups"?: [group]}}`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct GroupByIdAnswer {
        /// `resultSet` (optional, as published).
        #[serde(default)]
        pub result_set: GroupSet,
    }

    /// `POST /dnc-groups` and `PUT /dnc-groups/{id}` → `{"dncGroups": [group]}` (no `resultSet`).
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CreatedGroups {
        /// `dncGroups`: the created or updated group (empty when absent: the caller looks it up by name).
        #[serde(default)]
        pub dnc_groups: Vec<Group>,
    }

    /// A record of a group (`GET /dnc-groups/{id}/records`).
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Record {
        /// `recordId`: CXone's id of the record, when given.
        #[serde(default)]
        pub record_id: Option<Id>,
        /// `phoneNumber` (digits, as a string or a number).
        #[serde(default)]
        pub phone_number: Option<Value>,
        /// `formattedPhone` (format unpublished: only its digits are read).
        #[serde(default)]
        pub formatted_phone: Option<Value>,
        /// `expiredDate`: `null` for a record that never expires.
        #[serde(default)]
        pub expired_date: Option<String>,
        /// `dateCollected`: when the opt-out was collected, as CXone gives it (read back as the entry's creation time).
        #[serde(default)]
        pub date_collected: Option<String>,
    }

    /// A page of a group's records, the body inside `resultSet`: `{"totalRecords"?, "dncRecords"?}`.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct RecordSet {
        /// `totalRecords`: every record of the group, not this page's.
        #[serde(default)]
        pub total_records: Option<u64>,
        /// `dncRecords`: this page's records (empty when absent).
        #[serde(default)]
        pub dnc_records: Vec<Record>,
    }

    /// `GET /dnc-groups/{id}/records` → `{"resultSet"?: {"totalRecords"?, "dncRecords"?}}`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct RecordsAnswer {
        /// `resultSet` (optional: absent reads as an empty page).
        #[serde(default)]
        pub result_set: RecordSet,
    }

    /// One record's result (`POST`/`DELETE /dnc-groups/{id}/records`): the number only as `formattedPhone`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct RecordResult {
        /// `success`: whether the record was written (or deleted); a boolean, or its text.
        #[serde(default)]
        pub success: Flag,
        /// `error`: a message, empty on success.
        #[serde(default)]
        pub error: Option<Value>,
        /// `formattedPhone`: the number echoed, its format unpublished (paired with the record sent by its last ten
        /// digits).
        #[serde(default)]
        pub formatted_phone: Option<Value>,
    }

    /// `{"errorCount"?, "recordResults"?}`: the body of `DELETE …/records`, inside `resultSet` for `POST`.
    #[derive(Debug, Clone, Default, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct RecordResults {
        /// `errorCount`: records of the request that failed, when given.
        #[serde(default)]
        pub error_count: Option<u64>,
        /// `recordResults`: one result per record sent, not necessarily in order (paired by `formattedPhone`).
        #[serde(default)]
        pub record_results: Vec<RecordResult>,
    }

    /// `POST /dnc-groups/{id}/records` → `{"resultSet"?: {"errorCount"?, "recordResults"?}}`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AddedRecords {
        /// `resultSet` (optional, as published: absent reads as no result).
        #[serde(default)]
        pub result_set: RecordResults,
    }

    /// A skill as a group names it (`scrubbedSkills`, `contributingSkills`).
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SkillRef {
        /// `skillId`: the skill's id, a number or a string on the wire.
        pub skill_id: Id,
        /// `skillName` (empty when absent).
        #[serde(default)]
        pub skill_name: String,
    }

    /// `GET /dnc-groups/{id}/scrubbed-skills` → `{"totalRecords"?, "_links"?, "scrubbedSkills"}`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ScrubbedSkills {
        /// `scrubbedSkills`: the skills whose outbound calls the group suppresses.
        pub scrubbed_skills: Vec<SkillRef>,
    }

    /// `GET /dnc-groups/{id}/contributing-skills` → `{"totalRecords"?, "_links"?, "contributingSkills"}`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ContributingSkills {
        /// `contributingSkills`, as published (no suppression depends on them).
        pub contributing_skills: Vec<SkillRef>,
    }

    /// A skill of the tenant (`GET /skills`). *Assumed shape*: the fields a skill carries in the published
    /// skill-agent assignments (`skillId`, `skillName`, `isActive`, `isOutbound`); a skill whose answer lacks
    /// `isOutbound` is not taken for outbound.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Skill {
        /// `skillId`: the skill's id, a number or a string on the wire.
        pub skill_id: Id,
        /// `skillName` (empty when absent).
        #[serde(default)]
        pub skill_name: String,
        /// `isOutbound`: None (not said) is not taken for outbound.
        #[serde(default)]
        pub is_outbound: Option<bool>,
        /// `isActive`: only an explicit `false` rules the skill out.
        #[serde(default)]
        pub is_active: Option<bool>,
    }

    /// `GET /skills` → `{"skills": [skill]}` (*assumed*, see [`Skill`]).
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Skills {
        /// `skills`: the tenant's skills.
        pub skills: Vec<Skill>,
    }

    /// One hit of `POST /dnc-groups/search?phoneNumber=`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SearchHit {
        /// `dncGroupId`: the group holding the number.
        pub dnc_group_id: Id,
        /// `dncGroupName` (empty when absent).
        #[serde(default)]
        pub dnc_group_name: String,
        /// `formattedPhone`: the number found, its format unpublished (only its digits are read).
        #[serde(default)]
        pub formatted_phone: Option<Value>,
        /// `expiredDate`: when the record stops suppressing; `null` for one that never expires.
        #[serde(default)]
        pub expired_date: Option<String>,
    }

    /// `POST /dnc-groups/search` → `{"searchResults": [hit]}`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SearchAnswer {
        /// `searchResults`: one hit per group holding the number (none: no group holds it).
        pub search_results: Vec<SearchHit>,
    }

    /// A calling list (`GET /lists/call-lists`).
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CallingList {
        /// `listId`: the calling list's id.
        pub list_id: Id,
        /// `listName` (empty when absent).
        #[serde(default)]
        pub list_name: String,
        /// `totalRecords`: what counts against the environment's cap (valid or not).
        #[serde(default)]
        pub total_records: Option<u64>,
        /// `validRecords`: counted against the cap only when `totalRecords` is absent.
        #[serde(default)]
        pub valid_records: Option<u64>,
    }

    /// `GET /lists/call-lists` → `{"totalRecords"?, "_links"?, "callingLists"}`.
    #[derive(Debug, Clone, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CallingLists {
        /// `callingLists`: the tenant's calling lists, each counted against the cap.
        pub calling_lists: Vec<CallingList>,
    }
}

impl wire::Group {
    /// The group as the pipeline's list: active only when it says so and is not removed.
    pub fn into_list(self) -> DncList {
        let description = match self.dnc_group_description {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        DncList {
            id: self.dnc_group_id.0,
            name: self.dnc_group_name,
            description,
            kind: "DNC_GROUP".into(),
            default_expiration_date: None,
            // A removed group suppresses nothing; an answer without `isActive` is not taken for active.
            is_active: self.is_active == Some(true) && self.is_removed != Some(true),
        }
    }
}

/// The ten digits of a North American E.164 number (`+1` and ten digits, area code and exchange 2–9), as the Admin
/// API holds it; `None` for a number it cannot hold.
pub fn nanp10(e164: &str) -> Option<&str> {
    let ten = e164.strip_prefix("+1")?;
    let b = ten.as_bytes();
    (b.len() == 10 && b.iter().all(u8::is_ascii_digit) && b[0] >= b'2' && b[3] >= b'2')
        .then_some(ten)
}

/// The last ten digits of a number as the API echoes it (`formattedPhone`, whose format is unpublished: `(202)
/// 555-0198`, `2025550198`, `+1 202-555-0198`, a JSON number …): what pairs a result with the record sent. `None`
/// when it holds fewer than ten digits.
pub fn last_ten(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let d: Vec<u8> = text.bytes().filter(u8::is_ascii_digit).collect();
    (d.len() >= 10).then(|| String::from_utf8_lossy(&d[d.len() - 10..]).into_owned())
}

/// A record's error as a code for the dead letters: a code-like message (`INVALID_PHONE_NUMBER`) as it is, else
/// `RECORD_REJECTED` with the message kept beside it.
fn error_code(message: &str) -> String {
    let code_like = !message.is_empty()
        && message
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if code_like {
        message.to_string()
    } else {
        "RECORD_REJECTED".into()
    }
}

/// Whether a record's error says the group already holds the number (a tenant where adding a held number is an
/// error, not an upsert). Unpublished wording: any mention of existing or duplicating counts; a wording this misses
/// is still settled by reconcile, which counts a refused number the group holds as held.
fn says_held(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("exist") || m.contains("duplicate") || m.contains("already")
}

/// The outcome of one record from its result.
fn outcome_of(r: wire::RecordResult, ten: &str) -> EntryOutcome {
    if r.success.0 {
        return EntryOutcome::Created {
            id: ten.to_string(),
        };
    }
    let message = match r.error {
        Some(Value::String(m)) if !m.trim().is_empty() => m,
        Some(Value::String(_)) | Some(Value::Null) | None => "rejected without a reason".into(),
        Some(other) => other.to_string(),
    };
    if says_held(&message) {
        return EntryOutcome::Exists {
            id: ten.to_string(),
        };
    }
    EntryOutcome::Rejected {
        code: error_code(&message),
        message,
    }
}

/// Pair results with the records sent on the last ten digits of `formattedPhone`, never by position: a result that
/// names no number sent is ignored, a record without a result stays unconfirmed (reconcile reads the group).
fn pair_results(
    chunk: &[(usize, &str, Option<String>)],
    results: Vec<wire::RecordResult>,
) -> Vec<(usize, EntryOutcome)> {
    let mut by_number: HashMap<String, Vec<wire::RecordResult>> = HashMap::new();
    for r in results {
        if let Some(ten) = r.formatted_phone.as_ref().and_then(last_ten) {
            by_number.entry(ten).or_default().push(r);
        }
    }
    // The same number twice in one request: each record takes one result, in order.
    for v in by_number.values_mut() {
        v.reverse();
    }
    chunk
        .iter()
        .map(|(i, ten, _)| {
            let outcome = match by_number.get_mut(*ten).and_then(Vec::pop) {
                Some(r) => outcome_of(r, ten),
                None => EntryOutcome::Unconfirmed,
            };
            (*i, outcome)
        })
        .collect()
}

impl AdminClient {
    /// A client for the credentials from `source` (password grant, discovery unless a base URL is given).
    pub fn new(
        source: Box<dyn CredentialSource>,
        config: ClientConfig,
    ) -> Result<AdminClient, CxoneError> {
        Ok(AdminClient {
            policy: RequestPolicy::new(source, config)?,
            encoding: AtomicU8::new(UNSETTLED),
        })
    }

    /// The request policy (its counters: token requests, requests sent, the breaker).
    pub fn policy(&self) -> &RequestPolicy {
        &self.policy
    }

    async fn skills(&self) -> Result<Vec<wire::Skill>, CxoneError> {
        let s: wire::Skills = self.policy.get("list skills", "/skills", &[]).await?;
        Ok(s.skills)
    }

    async fn scrubbed(&self, group: &str) -> Result<Vec<wire::SkillRef>, CxoneError> {
        let path = format!("/dnc-groups/{}/scrubbed-skills", path_segment(group));
        let s: wire::ScrubbedSkills = self.policy.get("list scrubbed skills", &path, &[]).await?;
        Ok(s.scrubbed_skills)
    }

    async fn activate(&self, group: &str) -> Result<(), CxoneError> {
        let path = format!("/dnc-groups/{}", path_segment(group));
        self.policy
            .call(
                "activate DNC group",
                Method::PUT,
                &path,
                &[("isActive", "true".into())],
                None,
                Repeat::Safe,
            )
            .await?;
        Ok(())
    }

    /// One `POST …/records` of `chunk`, `phoneNumber` written as a string or a JSON number.
    async fn send_records(
        &self,
        group: &str,
        chunk: &[(usize, &str, Option<String>)],
        as_string: bool,
    ) -> Result<wire::RecordResults, CxoneError> {
        let records: Vec<Value> = chunk
            .iter()
            .map(|(_, ten, expires)| {
                let number = if as_string {
                    Value::String(ten.to_string())
                } else {
                    // Ten digits always fit: nanp10 admitted only digits.
                    Value::from(ten.parse::<u64>().unwrap_or_default())
                };
                match expires {
                    Some(e) => json!({"phoneNumber": number, "expiredDate": e}),
                    None => json!({"phoneNumber": number}),
                }
            })
            .collect();
        let path = format!("/dnc-groups/{}/records", path_segment(group));
        let body = json!({ "dncGroupRecords": records });
        let answer: wire::AddedRecords = self
            .policy
            .call_json(
                "add DNC group records",
                Method::POST,
                &path,
                &[],
                Some(&body),
                Repeat::Safe,
            )
            .await?;
        Ok(answer.result_set)
    }

    /// One write of `chunk` in the settled number form, or, while none is settled, in the other form too when the
    /// first is refused whole (400) or fails every record; the form that wrote something is kept.
    async fn send_settling(
        &self,
        group: &str,
        chunk: &[(usize, &str, Option<String>)],
    ) -> Result<wire::RecordResults, CxoneError> {
        let settled = self.encoding.load(Ordering::Relaxed);
        let first_as_string = settled == AS_STRING;
        let first = self.send_records(group, chunk, first_as_string).await;
        let wrote = |r: &wire::RecordResults| r.record_results.iter().any(|x| x.success.0);
        let settle = |as_string: bool| {
            let form = if as_string { AS_STRING } else { AS_NUMBER };
            if self.encoding.swap(form, Ordering::Relaxed) != form {
                tracing::info!(as_string, "phoneNumber form settled");
            }
        };
        if settled != UNSETTLED {
            return first;
        }
        match first {
            Ok(r) if wrote(&r) => {
                settle(first_as_string);
                Ok(r)
            }
            Ok(r) => match self.send_records(group, chunk, !first_as_string).await {
                Ok(other) if wrote(&other) => {
                    settle(!first_as_string);
                    Ok(other)
                }
                _ => Ok(r),
            },
            Err(CxoneError::Api { status: 400, .. }) => {
                let other = self.send_records(group, chunk, !first_as_string).await?;
                if wrote(&other) {
                    settle(!first_as_string);
                }
                Ok(other)
            }
            Err(e) => Err(e),
        }
    }

    /// One request of at most `max_batch` records; a 413 or 400 splits it in halves, recursively.
    fn write_chunk<'a>(
        &'a self,
        group: &'a str,
        chunk: &'a [(usize, &'a str, Option<String>)],
    ) -> futures::future::BoxFuture<'a, Result<Vec<(usize, EntryOutcome)>, CxoneError>> {
        Box::pin(async move {
            match self.send_settling(group, chunk).await {
                Ok(answer) => Ok(pair_results(chunk, answer.record_results)),
                // The Admin API may refuse a body it finds too large with 413 or 400: halve on either.
                Err(CxoneError::PayloadTooLarge { .. })
                | Err(CxoneError::Api { status: 400, .. })
                    if chunk.len() > 1 =>
                {
                    let (left, right) = chunk.split_at(chunk.len() / 2);
                    tracing::warn!(size = chunk.len(), "write refused as too large: halving");
                    let mut out = self.write_chunk(group, left).await?;
                    out.extend(self.write_chunk(group, right).await?);
                    Ok(out)
                }
                Err(e) => Err(e),
            }
        })
    }

    /// The groups whose record of `ten` suppresses now: found by the search, its expiration (if any) later than now.
    async fn search(&self, ten: &str) -> Result<Vec<String>, CxoneError> {
        let answer: wire::SearchAnswer = self
            .policy
            .call_json(
                "search DNC groups",
                Method::POST,
                "/dnc-groups/search",
                &[("phoneNumber", ten.to_string())],
                None,
                Repeat::Safe,
            )
            .await?;
        let now = chrono::Utc::now();
        Ok(answer
            .search_results
            .into_iter()
            .filter(|h| {
                h.expired_date
                    .as_deref()
                    .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
                    .is_none_or(|d| d > now)
            })
            .map(|h| h.dnc_group_id.0)
            .collect())
    }
}

#[async_trait::async_trait]
impl DncApi for AdminClient {
    fn dialect(&self) -> Dialect {
        Dialect::Admin
    }

    fn request_deadline(&self) -> std::time::Duration {
        self.policy.config().deadline
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            batch_check: false,
            idempotency_keys: false,
            entry_metadata: false,
            max_batch: self.policy.config().max_batch.max(1),
            numbers: NumberFormat::Nanp10,
        }
    }

    async fn lists(&self) -> Result<Vec<DncList>, CxoneError> {
        let g: wire::GroupsAnswer = self
            .policy
            .get("list DNC groups", "/dnc-groups", &[])
            .await?;
        Ok(g.result_set
            .dnc_groups
            .into_iter()
            .map(wire::Group::into_list)
            .collect())
    }

    async fn get_list(&self, id: &str) -> Result<Option<DncList>, CxoneError> {
        let path = format!("/dnc-groups/{}", path_segment(id));
        match self
            .policy
            .get::<wire::GroupByIdAnswer>("get DNC group", &path, &[])
            .await
        {
            Ok(g) => Ok(g
                .result_set
                .dnc_groups
                .into_iter()
                .find(|x| x.dnc_group_id.0 == id)
                .map(wire::Group::into_list)),
            Err(CxoneError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_list(&self, list: &NewList) -> Result<DncList, CxoneError> {
        const OP: &str = "create DNC group";
        let body = json!({"dncGroupName": list.name, "dncGroupDescription": list.description});
        let created: wire::CreatedGroups = self
            .policy
            .call_json(
                OP,
                Method::POST,
                "/dnc-groups",
                &[],
                Some(&body),
                Repeat::Unsafe,
            )
            .await?;
        let group = match created
            .dnc_groups
            .into_iter()
            .find(|g| g.dnc_group_name == list.name)
        {
            Some(g) => g.into_list(),
            // Created, but the answer did not carry it: read it back by name.
            None => self
                .find_list(&list.name)
                .await?
                .ok_or_else(|| CxoneError::Protocol {
                    op: OP,
                    message: "the group created is neither in the answer nor in the groups".into(),
                })?,
        };
        // Whether a new group starts active is unpublished: activate it when it is not.
        if list.is_active && !group.is_active {
            self.activate(&group.id).await?;
        }
        Ok(DncList {
            is_active: list.is_active || group.is_active,
            ..group
        })
    }

    async fn suppression(&self, list: &DncList) -> Result<Suppression, CxoneError> {
        if !list.is_active {
            return Ok(Suppression {
                suppressing: false,
                detail: "an inactive DNC group".into(),
            });
        }
        let scrubbed = self.scrubbed(&list.id).await?;
        // The scrubbed skills name only ids and names: whether one is outbound and active is the skill's own.
        let skills = if scrubbed.is_empty() {
            Vec::new()
        } else {
            self.skills().await?
        };
        let outbound: Vec<String> = scrubbed
            .iter()
            .filter(|r| {
                skills.iter().any(|s| {
                    s.skill_id == r.skill_id
                        && s.is_outbound == Some(true)
                        && s.is_active != Some(false)
                })
            })
            .map(|r| r.skill_name.clone())
            .collect();
        Ok(Suppression::by(
            &outbound,
            "scrubbed by outbound skills",
            "a DNC group scrubbed by no active outbound skill",
        ))
    }

    async fn bind_outbound(
        &self,
        list: &DncList,
        wanted: &[String],
    ) -> Result<Vec<String>, CxoneError> {
        const OP: &str = "bind DNC group";
        let mut done = Vec::new();
        if !list.is_active {
            self.activate(&list.id).await?;
            done.push(format!("activated DNC group {} ({})", list.name, list.id));
        }
        let skills = self.skills().await?;
        let usable = |s: &&wire::Skill| s.is_outbound == Some(true) && s.is_active != Some(false);
        let chosen: Vec<&wire::Skill> = if wanted.is_empty() {
            skills.iter().filter(usable).collect()
        } else {
            let mut chosen = Vec::new();
            for w in wanted {
                let skill = skills
                    .iter()
                    .find(|s| &s.skill_name == w || &s.skill_id.0 == w)
                    .ok_or_else(|| CxoneError::InvalidInput {
                        op: OP,
                        message: format!("no skill named or numbered {w}"),
                    })?;
                if skill.is_outbound != Some(true) {
                    return Err(CxoneError::InvalidInput {
                        op: OP,
                        message: format!(
                            "skill {w} is not outbound: scrubbing with it suppresses no call"
                        ),
                    });
                }
                chosen.push(skill);
            }
            chosen
        };
        if chosen.is_empty() {
            return Err(CxoneError::InvalidInput {
                op: OP,
                message: "the tenant has no active outbound skill to scrub the group".into(),
            });
        }
        let linked: Vec<wire::Id> = self
            .scrubbed(&list.id)
            .await?
            .into_iter()
            .map(|s| s.skill_id)
            .collect();
        for skill in chosen {
            if linked.contains(&skill.skill_id) {
                continue;
            }
            let path = format!(
                "/dnc-groups/{}/scrubbed-skills/{}",
                path_segment(&list.id),
                path_segment(&skill.skill_id.0)
            );
            // Published as POST with no body. Linking a linked skill again changes nothing: safe to repeat.
            self.policy
                .call(
                    "link scrubbed skill",
                    Method::POST,
                    &path,
                    &[],
                    None,
                    Repeat::Safe,
                )
                .await?;
            done.push(format!(
                "DNC group {} scrubbed by outbound skill {} ({})",
                list.name, skill.skill_name, skill.skill_id.0
            ));
        }
        Ok(done)
    }

    async fn upload_batch(
        &self,
        list_id: &str,
        entries: &[EntryInput],
    ) -> Result<Vec<EntryOutcome>, CxoneError> {
        let mut outcomes = vec![EntryOutcome::Unconfirmed; entries.len()];
        let mut sendable: Vec<(usize, &str, Option<String>)> = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            match nanp10(&e.phone_number) {
                Some(ten) => sendable.push((i, ten, e.expiration_date.clone())),
                // Never dropped: a dead letter saying why.
                None => {
                    outcomes[i] = EntryOutcome::Rejected {
                        code: "NOT_NANP".into(),
                        message: "the Admin API's DNC groups hold North American (+1) numbers only"
                            .into(),
                    }
                }
            }
        }
        for chunk in sendable.chunks(self.capabilities().max_batch) {
            for (i, outcome) in self.write_chunk(list_id, chunk).await? {
                outcomes[i] = outcome;
            }
        }
        Ok(outcomes)
    }

    async fn list_entries(
        &self,
        list_id: &str,
        offset: u64,
        limit: u32,
    ) -> Result<EntryPage, CxoneError> {
        let path = format!("/dnc-groups/{}/records", path_segment(list_id));
        let query = [
            ("skip", offset.to_string()),
            ("top", limit.clamp(1, MAX_PAGE).to_string()),
        ];
        let page: wire::RecordsAnswer = self
            .policy
            .get("list DNC group records", &path, &query)
            .await?;
        let set = page.result_set;
        let mut entries = Vec::with_capacity(set.dnc_records.len());
        for r in set.dnc_records {
            // `phoneNumber` holds the digits; `formattedPhone` too, in an unpublished format. A record naming no
            // number is not a number CXone holds for us: it cannot be matched, so it is left out (and reconcile,
            // not finding ours, re-sends them).
            let Some(ten) = r
                .phone_number
                .as_ref()
                .and_then(last_ten)
                .or_else(|| r.formatted_phone.as_ref().and_then(last_ten))
            else {
                tracing::warn!(group = list_id, "a record without a readable number");
                continue;
            };
            entries.push(RemoteEntry {
                id: r.record_id.map(|i| i.0).unwrap_or_else(|| ten.clone()),
                phone_number: format!("+1{ten}"),
                list_id: list_id.to_string(),
                jurisdiction: String::new(),
                expiration_date: r.expired_date,
                source: String::new(),
                created_at: r.date_collected,
            });
        }
        let total = set.total_records.unwrap_or(offset + entries.len() as u64);
        Ok(EntryPage {
            entries,
            offset,
            total,
        })
    }

    async fn probe(&self, list_id: &str, numbers: &[String]) -> Result<Vec<bool>, CxoneError> {
        // No batch check: one search per number, a few in flight (the limiter paces them).
        let mut answers = Vec::with_capacity(numbers.len());
        for chunk in numbers.chunks(4) {
            let searches = chunk.iter().map(|n| {
                let ten = nanp10(n).map(str::to_string);
                async move {
                    match ten {
                        Some(ten) => Ok(self.search(&ten).await?.iter().any(|g| g == list_id)),
                        None => Ok::<bool, CxoneError>(false),
                    }
                }
            });
            for answer in futures::future::join_all(searches).await {
                answers.push(answer?);
            }
        }
        Ok(answers)
    }

    async fn holdings(&self) -> Result<Holdings, CxoneError> {
        let mut h = Holdings::default();
        for group in self.lists().await? {
            h.dnc_records += self.list_entries(&group.id, 0, 1).await?.total;
        }
        match self
            .policy
            .get::<wire::CallingLists>("list calling lists", "/lists/call-lists", &[])
            .await
        {
            // Every record of a calling list counts against the cap, valid or not.
            Ok(lists) => {
                h.calling_list_records = lists
                    .calling_lists
                    .iter()
                    .map(|l| l.total_records.or(l.valid_records).unwrap_or(0))
                    .sum()
            }
            // Without the permission to read them, calling lists are reported uncounted, not assumed empty.
            Err(CxoneError::Api { status, .. }) if status == 403 || status == 404 => h
                .uncounted
                .push(format!("calling lists (answered {status})")),
            Err(CxoneError::Unauthorized { .. }) => {
                h.uncounted.push("calling lists (not permitted)".into())
            }
            Err(e) => return Err(e),
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A published sample (`docs/cxone-admin/samples/`), decoded with the client's own types.
    macro_rules! sample {
        ($t:ty, $file:literal) => {
            serde_json::from_str::<$t>(include_str!(concat!(
                "../../../../docs/cxone-admin/samples/",
                $file
            )))
            .unwrap_or_else(|e| panic!("{}: {e}", $file))
        };
    }

    #[test]
    fn the_published_samples_decode() {
        let groups = sample!(wire::GroupsAnswer, "get-dnc-groups.json").result_set;
        assert_eq!(groups.total_groups, Some(2));
        let lists: Vec<DncList> = groups
            .dnc_groups
            .into_iter()
            .map(wire::Group::into_list)
            .collect();
        assert_eq!(
            lists
                .iter()
                .map(|l| (l.id.as_str(), l.name.as_str(), l.is_active))
                .collect::<Vec<_>>(),
            [
                ("1000", "Default DNC Group", true),
                ("1001", "Internal_Opt_Outs", true)
            ]
        );

        let created = sample!(wire::CreatedGroups, "post-dnc-groups.json").dnc_groups;
        let created = created.into_iter().next().unwrap().into_list();
        assert_eq!(
            (
                created.id.as_str(),
                created.name.as_str(),
                created.is_active
            ),
            ("1002", "State_Lists", false)
        );

        let by_id = sample!(wire::GroupByIdAnswer, "get-dnc-group-by-id.json");
        assert_eq!(by_id.result_set.dnc_groups[0].dnc_group_id.0, "1001");
        assert_eq!(by_id.result_set.dnc_groups[0].valid_records, Some(41822));

        let records = sample!(wire::RecordsAnswer, "get-dnc-group-records.json").result_set;
        assert_eq!(records.total_records, Some(41822));
        let r: Vec<(Option<String>, Option<String>, Option<String>)> = records
            .dnc_records
            .iter()
            .map(|r| {
                (
                    r.record_id.clone().map(|i| i.0),
                    r.phone_number.as_ref().and_then(last_ten),
                    r.expired_date.clone(),
                )
            })
            .collect();
        assert_eq!(
            r,
            [
                (
                    Some("88412001".into()),
                    Some("2025550198".into()),
                    Some("2027-12-31T23:59:59.000Z".into())
                ),
                (Some("88412002".into()), Some("3125550142".into()), None),
            ]
        );

        let added = sample!(wire::AddedRecords, "post-dnc-group-records.json").result_set;
        assert_eq!(added.error_count, Some(1));
        // Paired on formattedPhone's digits: the first result is the number sent; the other names no number sent.
        let sent = [(0, "2025550198", None), (1, "3125550142", None)];
        let paired = pair_results(&sent, added.record_results);
        assert_eq!(
            paired,
            [
                (
                    0,
                    EntryOutcome::Created {
                        id: "2025550198".into()
                    }
                ),
                (1, EntryOutcome::Unconfirmed)
            ]
        );

        let deleted = sample!(wire::RecordResults, "delete-dnc-group-records.json");
        assert_eq!(deleted.error_count, Some(0));
        assert!(deleted.record_results[0].success.0);
        assert_eq!(
            deleted.record_results[0]
                .formatted_phone
                .as_ref()
                .and_then(last_ten)
                .as_deref(),
            Some("2025550198")
        );

        let scrubbed = sample!(wire::ScrubbedSkills, "get-dnc-group-scrubbed-skills.json");
        assert_eq!(
            (
                scrubbed.scrubbed_skills[0].skill_id.0.as_str(),
                scrubbed.scrubbed_skills[0].skill_name.as_str()
            ),
            ("11002", "OB_Collections_PC")
        );
        let contributing = sample!(
            wire::ContributingSkills,
            "get-dnc-group-contributing-skills.json"
        );
        assert!(contributing.contributing_skills.is_empty());

        let search = sample!(wire::SearchAnswer, "post-dnc-groups-search.json");
        assert_eq!(search.search_results.len(), 1);
        assert_eq!(search.search_results[0].dnc_group_id.0, "1001");
        assert_eq!(
            search.search_results[0]
                .formatted_phone
                .as_ref()
                .and_then(last_ten)
                .as_deref(),
            Some("2025550198")
        );

        let calling = sample!(wire::CallingLists, "get-call-lists.json").calling_lists;
        assert_eq!(
            (
                calling[0].list_id.0.as_str(),
                calling[0].total_records,
                calling[0].valid_records
            ),
            ("5120", Some(18250), Some(18000))
        );
    }

    #[test]
    fn only_north_american_numbers_have_ten_digits() {
        assert_eq!(nanp10("+12025550123"), Some("2025550123"));
        assert_eq!(nanp10("+442071234567"), None);
        assert_eq!(nanp10("+11025550123"), None);
        assert_eq!(nanp10("+12021550123"), None);
        assert_eq!(nanp10("+1202555012"), None);
    }

    #[test]
    fn echoed_numbers_pair_whatever_their_form() {
        for form in [
            json!("(202) 555-0123"),
            json!("2025550123"),
            json!("12025550123"),
            json!("+1 202-555-0123"),
            json!("202.555.0123"),
            json!(2025550123u64),
            json!(12025550123u64),
        ] {
            assert_eq!(last_ten(&form).as_deref(), Some("2025550123"), "{form}");
        }
        assert_eq!(last_ten(&json!("555-0123")), None);
        assert_eq!(last_ten(&json!(null)), None);
    }

    #[test]
    fn results_pair_by_number_never_by_position() {
        let sent = [
            (0, "2025550101", None),
            (1, "2025550102", None),
            (2, "2025550103", None),
        ];
        let result = |phone: &str, ok: bool, error: &str| wire::RecordResult {
            success: wire::Flag(ok),
            error: Some(json!(error)),
            formatted_phone: Some(json!(phone)),
        };
        // Reversed, one missing, one for a number never sent, one duplicate refusal.
        let paired = pair_results(
            &sent,
            vec![
                result("(202) 555-0103", false, "Phone number already exists"),
                result("(999) 555-0000", true, ""),
                result("(202) 555-0101", false, "Invalid phone number"),
            ],
        );
        assert_eq!(
            paired,
            [
                (
                    0,
                    EntryOutcome::Rejected {
                        code: "RECORD_REJECTED".into(),
                        message: "Invalid phone number".into()
                    }
                ),
                (1, EntryOutcome::Unconfirmed),
                (
                    2,
                    EntryOutcome::Exists {
                        id: "2025550103".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn ids_and_flags_read_either_way_and_say_what_they_got() {
        let id: wire::Id = serde_json::from_str("11002").unwrap();
        assert_eq!(id, serde_json::from_str::<wire::Id>("\"11002\"").unwrap());
        let err = serde_json::from_str::<wire::Id>("[1]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("an array"), "{err}");
        assert!(serde_json::from_str::<wire::Flag>("\"true\"").unwrap().0);
        assert!(!serde_json::from_str::<wire::Flag>("false").unwrap().0);
    }

    #[test]
    fn record_errors_become_codes() {
        assert_eq!(error_code("INVALID_PHONE_NUMBER"), "INVALID_PHONE_NUMBER");
        assert_eq!(error_code("Invalid phone number"), "RECORD_REJECTED");
        assert_eq!(error_code(""), "RECORD_REJECTED");
    }

    #[test]
    fn a_removed_or_unstated_group_is_not_active() {
        let group = |v: Value| {
            serde_json::from_value::<wire::Group>(v)
                .unwrap()
                .into_list()
        };
        assert!(group(json!({"dncGroupId": 1, "isActive": true})).is_active);
        assert!(!group(json!({"dncGroupId": 1, "isActive": true, "isRemoved": true})).is_active);
        assert!(!group(json!({"dncGroupId": 1})).is_active);
        assert_eq!(
            group(json!({"dncGroupId": "7", "dncGroupDescription": 5})).description,
            "5"
        );
    }
}
