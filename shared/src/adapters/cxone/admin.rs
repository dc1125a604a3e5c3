//! The `admin` dialect client: the CXone Admin API's DNC groups (`docs/cxone-admin-api.md`), over the same
//! [`RequestPolicy`] as `v2`.
//!
//! A group stands for a list (its id the group's number); suppression is the group being active and scrubbed by at
//! least one active outbound skill; records are ten-digit North American numbers with an optional expiration, no
//! jurisdiction, source or idempotency key. Adding a number a group holds is harmless, so writes are repeated
//! safely; a write whose answer was lost is settled by reading the group back (reconcile). There is no batch
//! check: the canary searches numbers one by one, and `check` answers from what dncflow has verified.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::CredentialSource;
use super::policy::{ClientConfig, Repeat, RequestPolicy};
use super::{
    path_segment, Capabilities, CxoneError, Dialect, DncApi, DncList, EntryInput, EntryOutcome,
    EntryPage, Holdings, NewList, NumberFormat, RemoteEntry, Suppression, MAX_PAGE,
};

/// The `admin` client.
pub struct AdminClient {
    policy: RequestPolicy,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    dnc_group_id: Value,
    #[serde(default)]
    dnc_group_name: String,
    #[serde(default)]
    dnc_group_description: Option<String>,
    #[serde(default)]
    is_active: Option<bool>,
}

impl Group {
    fn id(&self) -> String {
        match &self.dnc_group_id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    fn into_list(self) -> DncList {
        DncList {
            id: self.id(),
            name: self.dnc_group_name,
            description: self.dnc_group_description.unwrap_or_default(),
            kind: "DNC_GROUP".into(),
            default_expiration_date: None,
            is_active: self.is_active.unwrap_or(true),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Groups {
    #[serde(default)]
    dnc_groups: Vec<Group>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Skill {
    skill_id: Value,
    #[serde(default)]
    skill_name: String,
    #[serde(default)]
    is_outbound: bool,
    #[serde(default = "yes")]
    is_active: bool,
}

fn yes() -> bool {
    true
}

impl Skill {
    fn id(&self) -> String {
        match &self.skill_id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct Skills {
    #[serde(default)]
    skills: Vec<Skill>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultSet {
    result_set: RecordResults,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordResults {
    #[serde(default)]
    record_results: Vec<RecordResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordResult {
    success: bool,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    phone_number: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    phone_number: Value,
    #[serde(default)]
    expired_date: Option<String>,
    #[serde(default)]
    created_date: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Records {
    #[serde(default)]
    total_records: u64,
    #[serde(default)]
    dnc_group_records: Vec<Record>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallingList {
    #[serde(default)]
    total_records: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallingLists {
    #[serde(default)]
    calling_lists: Vec<CallingList>,
}

/// The ten digits of a North American E.164 number (`+1` and ten digits, area code and exchange 2–9), as the Admin
/// API holds it; `None` for a number it cannot hold.
pub fn nanp10(e164: &str) -> Option<&str> {
    let ten = e164.strip_prefix("+1")?;
    let b = ten.as_bytes();
    (b.len() == 10 && b.iter().all(u8::is_ascii_digit) && b[0] >= b'2' && b[3] >= b'2')
        .then_some(ten)
}

/// A number as the API echoes it (a string or a JSON number), reduced to its digits, a leading `1` of eleven
/// dropped: what pairs a result with the record sent.
fn digits_of(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let d: String = text.chars().filter(char::is_ascii_digit).collect();
    match d.len() {
        11 if d.starts_with('1') => d[1..].to_string(),
        _ => d,
    }
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

impl AdminClient {
    /// A client for the credentials from `source` (password grant, discovery unless a base URL is given).
    pub fn new(
        source: Box<dyn CredentialSource>,
        config: ClientConfig,
    ) -> Result<AdminClient, CxoneError> {
        Ok(AdminClient {
            policy: RequestPolicy::new(source, config)?,
        })
    }

    /// The request policy (its counters: token requests, requests sent, the breaker).
    pub fn policy(&self) -> &RequestPolicy {
        &self.policy
    }

    async fn skills(&self) -> Result<Vec<Skill>, CxoneError> {
        let s: Skills = self.policy.get("list skills", "/skills", &[]).await?;
        Ok(s.skills)
    }

    async fn scrubbed(&self, group: &str) -> Result<Vec<Skill>, CxoneError> {
        let path = format!("/dnc-groups/{}/scrubbed-skills", path_segment(group));
        let s: Skills = self.policy.get("list scrubbed skills", &path, &[]).await?;
        Ok(s.skills)
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

    /// One request of at most `max_batch` records; a 413 splits it in halves, recursively.
    fn write_chunk<'a>(
        &'a self,
        group: &'a str,
        chunk: &'a [(usize, &'a str, Option<String>)],
    ) -> futures::future::BoxFuture<'a, Result<Vec<(usize, EntryOutcome)>, CxoneError>> {
        Box::pin(async move {
            const OP: &str = "add DNC group records";
            let records: Vec<Value> = chunk
                .iter()
                .map(|(_, ten, expires)| match expires {
                    Some(e) => json!({"phoneNumber": ten, "expiredDate": e}),
                    None => json!({"phoneNumber": ten}),
                })
                .collect();
            let path = format!("/dnc-groups/{}/records", path_segment(group));
            let body = json!({ "dncGroupRecords": records });
            match self
                .policy
                .call_json::<ResultSet>(OP, Method::POST, &path, &[], Some(&body), Repeat::Safe)
                .await
            {
                Ok(answer) => {
                    // Paired by number, never by position: a result for a number not sent is ignored, a number
                    // without a result stays unconfirmed (reconcile reads the group).
                    let mut by_number: std::collections::HashMap<String, RecordResult> =
                        std::collections::HashMap::new();
                    for r in answer.result_set.record_results {
                        if let Some(n) = r.phone_number.as_ref().map(digits_of) {
                            by_number.insert(n, r);
                        }
                    }
                    Ok(chunk
                        .iter()
                        .map(|(i, ten, _)| {
                            let outcome = match by_number.remove(*ten) {
                                Some(r) if r.success => EntryOutcome::Created {
                                    id: ten.to_string(),
                                },
                                Some(r) => {
                                    let message = match r.error {
                                        Some(Value::String(m)) => m,
                                        Some(other) => other.to_string(),
                                        None => "rejected without a reason".into(),
                                    };
                                    EntryOutcome::Rejected {
                                        code: error_code(&message),
                                        message,
                                    }
                                }
                                None => EntryOutcome::Unconfirmed,
                            };
                            (*i, outcome)
                        })
                        .collect())
                }
                // The Admin API may refuse a body it finds too large with 413 or 400: halve on either.
                Err(CxoneError::PayloadTooLarge { .. })
                | Err(CxoneError::Api { status: 400, .. })
                    if chunk.len() > 1 =>
                {
                    let (left, right) = chunk.split_at(chunk.len() / 2);
                    tracing::warn!(op = OP, size = chunk.len(), "refused as too large: halving");
                    let mut out = self.write_chunk(group, left).await?;
                    out.extend(self.write_chunk(group, right).await?);
                    Ok(out)
                }
                Err(e) => Err(e),
            }
        })
    }

    async fn search(&self, ten: &str) -> Result<Vec<String>, CxoneError> {
        let g: Groups = self
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
        Ok(g.dnc_groups.iter().map(Group::id).collect())
    }
}

#[async_trait::async_trait]
impl DncApi for AdminClient {
    fn dialect(&self) -> Dialect {
        Dialect::Admin
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
        let g: Groups = self
            .policy
            .get("list DNC groups", "/dnc-groups", &[])
            .await?;
        Ok(g.dnc_groups.into_iter().map(Group::into_list).collect())
    }

    async fn get_list(&self, id: &str) -> Result<Option<DncList>, CxoneError> {
        let path = format!("/dnc-groups/{}", path_segment(id));
        match self.policy.get::<Value>("get DNC group", &path, &[]).await {
            // `{"dncGroups": [group]}` or the group itself.
            Ok(v) => {
                let group = v
                    .get("dncGroups")
                    .and_then(|g| g.get(0))
                    .cloned()
                    .unwrap_or(v);
                Ok(serde_json::from_value::<Group>(group)
                    .ok()
                    .map(Group::into_list))
            }
            Err(CxoneError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_list(&self, list: &NewList) -> Result<DncList, CxoneError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            dnc_group_id: Value,
        }
        let body = json!({"dncGroupName": list.name, "dncGroupDescription": list.description});
        let created: Created = self
            .policy
            .call_json(
                "create DNC group",
                Method::POST,
                "/dnc-groups",
                &[],
                Some(&body),
                Repeat::Unsafe,
            )
            .await?;
        let id = match created.dnc_group_id {
            Value::String(s) => s,
            other => other.to_string(),
        };
        if list.is_active {
            self.activate(&id).await?;
        }
        Ok(DncList {
            id,
            name: list.name.clone(),
            description: list.description.clone(),
            kind: "DNC_GROUP".into(),
            default_expiration_date: None,
            is_active: list.is_active,
        })
    }

    async fn suppression(&self, list: &DncList) -> Result<Suppression, CxoneError> {
        if !list.is_active {
            return Ok(Suppression {
                suppressing: false,
                detail: "an inactive DNC group".into(),
            });
        }
        let outbound: Vec<String> = self
            .scrubbed(&list.id)
            .await?
            .into_iter()
            .filter(|s| s.is_outbound && s.is_active)
            .map(|s| s.skill_name)
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
        let chosen: Vec<&Skill> = if wanted.is_empty() {
            skills
                .iter()
                .filter(|s| s.is_outbound && s.is_active)
                .collect()
        } else {
            let mut chosen = Vec::new();
            for w in wanted {
                let skill = skills
                    .iter()
                    .find(|s| &s.skill_name == w || &s.id() == w)
                    .ok_or_else(|| CxoneError::InvalidInput {
                        op: OP,
                        message: format!("no skill named or numbered {w}"),
                    })?;
                if !skill.is_outbound {
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
        let linked: Vec<String> = self
            .scrubbed(&list.id)
            .await?
            .iter()
            .map(Skill::id)
            .collect();
        for skill in chosen {
            if linked.contains(&skill.id()) {
                continue;
            }
            let path = format!(
                "/dnc-groups/{}/scrubbed-skills/{}",
                path_segment(&list.id),
                path_segment(&skill.id())
            );
            self.policy
                .call(
                    "link scrubbed skill",
                    Method::PUT,
                    &path,
                    &[],
                    None,
                    Repeat::Safe,
                )
                .await?;
            done.push(format!(
                "DNC group {} scrubbed by outbound skill {} ({})",
                list.name,
                skill.skill_name,
                skill.id()
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
        let page: Records = self
            .policy
            .get("list DNC group records", &path, &query)
            .await?;
        Ok(EntryPage {
            entries: page
                .dnc_group_records
                .into_iter()
                .map(|r| {
                    let ten = digits_of(&r.phone_number);
                    RemoteEntry {
                        id: ten.clone(),
                        phone_number: format!("+1{ten}"),
                        list_id: list_id.to_string(),
                        jurisdiction: String::new(),
                        expiration_date: r.expired_date,
                        source: String::new(),
                        created_at: r.created_date,
                    }
                })
                .collect(),
            offset,
            total: page.total_records,
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
            .get::<CallingLists>("list calling lists", "/lists/call-lists", &[])
            .await
        {
            Ok(lists) => {
                h.calling_list_records = lists.calling_lists.iter().map(|l| l.total_records).sum()
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
        assert_eq!(digits_of(&json!("(202) 555-0123")), "2025550123");
        assert_eq!(digits_of(&json!(12025550123u64)), "2025550123");
        assert_eq!(digits_of(&json!("+1 202 555 0123")), "2025550123");
    }

    #[test]
    fn record_errors_become_codes() {
        assert_eq!(error_code("INVALID_PHONE_NUMBER"), "INVALID_PHONE_NUMBER");
        assert_eq!(error_code("Invalid phone number"), "RECORD_REJECTED");
        assert_eq!(error_code(""), "RECORD_REJECTED");
    }
}
