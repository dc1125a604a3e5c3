//! The `v2` dialect client (the contract in `docs/cxone-api.md`), with rate limiting, retries, batch splitting, token refresh and a
//! circuit breaker.

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::CredentialSource;
pub use super::policy::ClientConfig;
use super::policy::{Repeat, RequestPolicy};
use super::{
    Capabilities, CheckStatus, ContactQuery, ContactResult, CxoneError, Dialect, DncApi, DncList,
    DncRule, EntryInput, EntryOutcome, EntryPage, NewList, NumberFormat, RemoteEntry, Suppression,
    MAX_CONTACTS_PER_REQUEST, MAX_ENTRIES_PER_REQUEST, MAX_PAGE,
};

/// The client of the CXone DNC API v2 (lists, rules, entries, batch contact checks), as `docs/cxone-api.md` describes
/// it.
pub struct V2Client {
    policy: RequestPolicy,
}

/// `{"data": [...]}`: lists, rules.
#[derive(Deserialize)]
pub(crate) struct DataList<T> {
    pub(crate) data: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Paging {
    pub(crate) offset: u64,
    pub(crate) total: u64,
}

/// `GET /api/v2/dnc/entries` → `{"data": [entry], "paging": {"offset", "total", …}}`.
#[derive(Deserialize)]
pub(crate) struct EntriesPage {
    pub(crate) data: Vec<RemoteEntry>,
    pub(crate) paging: Paging,
}

#[derive(Deserialize)]
struct WriteResult {
    #[serde(default)]
    data: Vec<WriteOk>,
    #[serde(default)]
    errors: Vec<WriteErr>,
}

#[derive(Deserialize)]
struct WriteOk {
    index: usize,
    #[serde(default)]
    id: String,
    status: String,
}

#[derive(Deserialize)]
struct WriteErr {
    index: usize,
    code: String,
    #[serde(default)]
    message: String,
}

/// `POST /api/v2/dnc/contacts/batch` → `{"results": [result]}`.
#[derive(Deserialize)]
pub(crate) struct CheckResults {
    pub(crate) results: Vec<ContactResult>,
}

impl V2Client {
    /// A client for the credentials from `source`.
    pub fn new(
        source: Box<dyn CredentialSource>,
        config: ClientConfig,
    ) -> Result<V2Client, CxoneError> {
        Ok(V2Client {
            policy: RequestPolicy::new(source, config)?,
        })
    }

    /// Token requests sent so far.
    pub fn token_requests(&self) -> u64 {
        self.policy.token_requests()
    }

    /// API requests sent so far (retries included, token requests excluded).
    pub fn requests_sent(&self) -> u64 {
        self.policy.requests_sent()
    }

    /// Whether the circuit breaker is open.
    pub fn breaker_open(&self) -> bool {
        self.policy.breaker_open()
    }

    /// One request of at most 100 entries; a 413 splits it in halves, recursively.
    fn upload_chunk<'a>(
        &'a self,
        list_id: &'a str,
        entries: &'a [EntryInput],
    ) -> futures::future::BoxFuture<'a, Result<Vec<EntryOutcome>, CxoneError>> {
        Box::pin(async move {
            const OP: &str = "upload entries";
            let data: Vec<Value> = entries
                .iter()
                .map(|e| {
                    json!({
                        "phoneNumber": e.phone_number, "listId": list_id, "jurisdiction": e.jurisdiction,
                        "expirationDate": e.expiration_date, "source": e.source, "idempotencyKey": e.idempotency_key,
                    })
                })
                .collect();
            let body = json!({ "data": data });
            match self
                .policy
                .call_json::<WriteResult>(
                    OP,
                    Method::POST,
                    "/api/v2/dnc/entries",
                    &[],
                    Some(&body),
                    Repeat::Safe,
                )
                .await
            {
                Ok(result) => {
                    let mut outcomes = vec![EntryOutcome::Unconfirmed; entries.len()];
                    for ok in result.data {
                        if let Some(slot) = outcomes.get_mut(ok.index) {
                            *slot = if ok.status == "exists" {
                                EntryOutcome::Exists { id: ok.id }
                            } else {
                                EntryOutcome::Created { id: ok.id }
                            };
                        }
                    }
                    for err in result.errors {
                        if let Some(slot) = outcomes.get_mut(err.index) {
                            *slot = if err.code == "IDEMPOTENCY_CONFLICT" {
                                // The key was used before with another payload: whether CXone holds the number is
                                // unknown, not refused. Reconciliation reads the list and re-uploads it if absent.
                                EntryOutcome::Unconfirmed
                            } else {
                                EntryOutcome::Rejected {
                                    code: err.code,
                                    message: err.message,
                                }
                            };
                        }
                    }
                    Ok(outcomes)
                }
                Err(CxoneError::PayloadTooLarge { .. }) if entries.len() > 1 => {
                    let (left, right) = entries.split_at(entries.len() / 2);
                    tracing::warn!(
                        op = OP,
                        size = entries.len(),
                        "413: splitting the batch in halves"
                    );
                    let mut outcomes = self.upload_chunk(list_id, left).await?;
                    outcomes.extend(self.upload_chunk(list_id, right).await?);
                    Ok(outcomes)
                }
                Err(e) => Err(e),
            }
        })
    }
}

#[async_trait]
impl DncApi for V2Client {
    fn dialect(&self) -> Dialect {
        Dialect::V2
    }

    fn request_deadline(&self) -> std::time::Duration {
        self.policy.config().deadline
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            batch_check: true,
            idempotency_keys: true,
            entry_metadata: true,
            max_batch: MAX_ENTRIES_PER_REQUEST,
            numbers: NumberFormat::E164,
        }
    }

    async fn suppression(&self, list: &DncList) -> Result<Suppression, CxoneError> {
        let rules: Vec<String> = self
            .rules()
            .await?
            .into_iter()
            .filter(|r| r.blocks_outbound(&list.id))
            .map(|r| r.name)
            .collect();
        Ok(Suppression::by(
            &rules,
            "BLOCK rules",
            "bound to no active BLOCK rule covering OUTBOUND",
        ))
    }

    async fn bind_outbound(
        &self,
        list: &DncList,
        _skills: &[String],
    ) -> Result<Vec<String>, CxoneError> {
        if self.suppression(list).await?.suppressing {
            return Ok(Vec::new());
        }
        let rule = DncRule {
            id: String::new(),
            name: format!("{} suppression", list.name),
            description: "dncflow: consolidated outbound suppression".into(),
            scope: super::RuleScope::Both,
            priority: 5,
            list_ids: vec![list.id.clone()],
            action: super::RuleAction::Block,
            is_active: true,
        };
        let created = super::create_rule_if_absent(self, &rule).await?;
        Ok(vec![format!(
            "created BLOCK rule {} ({}) of scope BOTH for list {}",
            created.name, created.id, list.name
        )])
    }

    async fn probe(&self, list_id: &str, numbers: &[String]) -> Result<Vec<bool>, CxoneError> {
        const OP: &str = "canary probe";
        let mut suppressed = Vec::with_capacity(numbers.len());
        for chunk in numbers.chunks(MAX_CONTACTS_PER_REQUEST) {
            let queries: Vec<ContactQuery> = chunk
                .iter()
                .map(|n| ContactQuery {
                    phone_number: n.clone(),
                    region_code: "US".into(),
                    list_ids: vec![list_id.to_string()],
                    match_type: "exact".into(),
                })
                .collect();
            let answered = self.check_contacts(&queries).await?;
            let paired = super::pair_check_results(&queries, answered)
                .map_err(|message| CxoneError::Protocol { op: OP, message })?;
            suppressed.extend(paired.iter().map(|r| r.status == CheckStatus::Suppressed));
        }
        Ok(suppressed)
    }

    async fn lists(&self) -> Result<Vec<DncList>, CxoneError> {
        let r: DataList<DncList> = self
            .policy
            .get("list DNC lists", "/api/v2/dnc/lists", &[])
            .await?;
        Ok(r.data)
    }

    async fn get_list(&self, id: &str) -> Result<Option<DncList>, CxoneError> {
        let path = format!("/api/v2/dnc/lists/{}", super::path_segment(id));
        match self.policy.get("get DNC list", &path, &[]).await {
            Ok(list) => Ok(Some(list)),
            Err(CxoneError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_list(&self, list: &NewList) -> Result<DncList, CxoneError> {
        let body = serde_json::to_value(list).map_err(|e| CxoneError::InvalidInput {
            op: "create DNC list",
            message: e.to_string(),
        })?;
        self.policy
            .call_json(
                "create DNC list",
                Method::POST,
                "/api/v2/dnc/lists",
                &[],
                Some(&body),
                Repeat::Unsafe,
            )
            .await
    }

    async fn rules(&self) -> Result<Vec<DncRule>, CxoneError> {
        let r: DataList<DncRule> = self
            .policy
            .get("list DNC rules", "/api/v2/dnc/rules", &[])
            .await?;
        Ok(r.data)
    }

    async fn create_rule(&self, rule: &DncRule) -> Result<DncRule, CxoneError> {
        let mut body = serde_json::to_value(rule).map_err(|e| CxoneError::InvalidInput {
            op: "create DNC rule",
            message: e.to_string(),
        })?;
        if let Some(o) = body.as_object_mut() {
            o.remove("id");
        }
        self.policy
            .call_json(
                "create DNC rule",
                Method::POST,
                "/api/v2/dnc/rules",
                &[],
                Some(&body),
                Repeat::Unsafe,
            )
            .await
    }

    async fn update_rule(&self, id: &str, rule: &DncRule) -> Result<DncRule, CxoneError> {
        let body = serde_json::to_value(rule).map_err(|e| CxoneError::InvalidInput {
            op: "update DNC rule",
            message: e.to_string(),
        })?;
        let path = format!("/api/v2/dnc/rules/{}", super::path_segment(id));
        // A full replacement: repeating it is harmless.
        self.policy
            .call_json(
                "update DNC rule",
                Method::PUT,
                &path,
                &[],
                Some(&body),
                Repeat::Safe,
            )
            .await
    }

    async fn upload_batch(
        &self,
        list_id: &str,
        entries: &[EntryInput],
    ) -> Result<Vec<EntryOutcome>, CxoneError> {
        let mut outcomes = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(MAX_ENTRIES_PER_REQUEST) {
            outcomes.extend(self.upload_chunk(list_id, chunk).await?);
        }
        Ok(outcomes)
    }

    async fn list_entries(
        &self,
        list_id: &str,
        offset: u64,
        limit: u32,
    ) -> Result<EntryPage, CxoneError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let query = [
            ("listId", list_id.to_string()),
            ("limit", limit.to_string()),
            ("offset", offset.to_string()),
        ];
        let page: EntriesPage = self
            .policy
            .get("list DNC entries", "/api/v2/dnc/entries", &query)
            .await?;
        Ok(EntryPage {
            entries: page.data,
            offset: page.paging.offset,
            total: page.paging.total,
        })
    }

    async fn check_contacts(
        &self,
        contacts: &[ContactQuery],
    ) -> Result<Vec<ContactResult>, CxoneError> {
        const OP: &str = "check contacts";
        if contacts.len() > MAX_CONTACTS_PER_REQUEST {
            return Err(CxoneError::InvalidInput {
                op: OP,
                message: format!("{} contacts, at most 1000 per call", contacts.len()),
            });
        }
        let body = json!({ "contacts": contacts });
        let r: CheckResults = self
            .policy
            .call_json(
                OP,
                Method::POST,
                "/api/v2/dnc/contacts/batch",
                &[],
                Some(&body),
                Repeat::Safe,
            )
            .await?;
        if r.results.len() != contacts.len() {
            return Err(CxoneError::Protocol {
                op: OP,
                message: format!(
                    "{} results for {} contacts",
                    r.results.len(),
                    contacts.len()
                ),
            });
        }
        Ok(r.results)
    }
}
