//! `dncctl doctor`: whether dncflow can talk to a tenant, found out in seconds and without writing anything.
//!
//! Only read-only calls, each recorded with its URL (query values masked), status, time and whether its answer
//! decoded with the client's own types; when one did not, the keys it had (its outline: names and JSON types,
//! never a value, a number or a secret). The calls: the token, API discovery (admin, unless a base URL is given),
//! the groups or lists, the skills (admin) or rules (v2), the named list's scrubbed skills and records (admin) or
//! entries (v2), one search (admin) or one batch check (v2) of a fictional number nobody holds, and the calling
//! lists (admin). From them: the capacity figures and whether the named list would suppress outbound calls.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::admin::wire;
use super::auth::{
    discovery_url, tenant_of, token_request, versioned_api, Credentials, Discovery, TokenResponse,
    DEFAULT_SCOPES,
};
use super::v2::{CheckResults, DataList, EntriesPage};
use super::{Dialect, DncList, DncRule};
use crate::adapters::http::redact_reqwest;

/// A fictional number (555-01XX is reserved for fiction): no tenant holds it, so asking about it reads nothing real.
pub const PROBE_NUMBER: &str = "2025550100";

/// What became of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer that decoded; what it said.
    Decoded(String),
    /// A 2xx answer that did not decode: why, and the keys it had.
    Undecodable {
        /// The decoder's complaint (field names, never values).
        reason: String,
        /// The answer's outline: keys and JSON types.
        keys: String,
    },
    /// A non-2xx answer: its status and the outline of its body (keys and JSON types, never values).
    Refused(String),
    /// No answer: the host could not be reached, or did not answer in time.
    Unreachable(String),
}

/// One call the doctor made, as it prints it.
#[derive(Debug, Clone)]
pub struct Call {
    /// What it asks, e.g. `list DNC groups`.
    pub name: &'static str,
    /// The HTTP method (`GET`, `POST`).
    pub method: &'static str,
    /// The URL, query values masked.
    pub url: String,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// How long it took.
    pub elapsed: Duration,
    /// What came of it.
    pub outcome: Outcome,
}

impl Call {
    /// Whether the call answered 2xx in the shape expected.
    pub fn ok(&self) -> bool {
        matches!(self.outcome, Outcome::Decoded(_))
    }
}

/// The named list, as the tenant holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFinding {
    /// The name asked for (`--list`).
    pub name: String,
    /// Whether the tenant has a list (or group) of that name.
    pub found: bool,
    /// Whether writing to it suppresses outbound calls.
    pub suppressing: bool,
    /// Why (or why not).
    pub detail: String,
}

/// Every call and what follows from them.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// The dialect the credentials name.
    pub dialect: Dialect,
    /// The calls, in order.
    pub calls: Vec<Call>,
    /// Records held against the environment's cap, when they could be counted.
    pub capacity: Option<String>,
    /// The named list's finding (None when no list was named).
    pub list: Option<ListFinding>,
}

impl Diagnosis {
    /// Every call answered in the expected shape, and the named list (if any) exists and suppresses.
    pub fn healthy(&self) -> bool {
        self.calls.iter().all(Call::ok)
            && self.list.as_ref().is_none_or(|l| l.found && l.suppressing)
    }

    /// The report a person reads: one line a call, then the findings.
    pub fn render(&self) -> String {
        let mut out = format!("dialect: {:?}\n", self.dialect).to_lowercase();
        for c in &self.calls {
            let status = c.status.map_or("---".to_string(), |s| s.to_string());
            let (mark, what) = match &c.outcome {
                Outcome::Decoded(s) => ("ok  ", s.clone()),
                Outcome::Undecodable { reason, keys } => (
                    "FAIL",
                    format!("answer not in the expected shape: {reason}; it had {keys}"),
                ),
                Outcome::Refused(s) => ("FAIL", s.clone()),
                Outcome::Unreachable(s) => ("FAIL", format!("unreachable: {s}")),
            };
            out.push_str(&format!(
                "{mark} {status} {:>6} ms  {} {}  ({}) {what}\n",
                c.elapsed.as_millis(),
                c.method,
                c.url,
                c.name
            ));
        }
        if let Some(cap) = &self.capacity {
            out.push_str(&format!("capacity: {cap}\n"));
        }
        if let Some(l) = &self.list {
            let verdict = match (l.found, l.suppressing) {
                (false, _) => "NOT FOUND",
                (true, true) => "suppresses outbound calls",
                (true, false) => "DOES NOT SUPPRESS outbound calls",
            };
            out.push_str(&format!("list {}: {verdict} ({})\n", l.name, l.detail));
        }
        out.push_str(if self.healthy() {
            "healthy: dncflow can talk to this tenant\n"
        } else {
            "NOT HEALTHY: see the calls marked FAIL above\n"
        });
        out
    }
}

/// The outline of a JSON value: keys (sorted) and JSON types, nested three deep, the first item of an array; never
/// a value.
pub fn outline(v: &Value) -> String {
    fn go(v: &Value, depth: usize) -> String {
        match v {
            Value::Null => "null".into(),
            Value::Bool(_) => "boolean".into(),
            Value::Number(_) => "number".into(),
            Value::String(_) => "string".into(),
            Value::Array(a) => match a.first() {
                None => "[]".into(),
                Some(_) if depth == 0 => "[…]".into(),
                Some(first) => format!("[{}]", go(first, depth - 1)),
            },
            Value::Object(o) if depth == 0 => format!("{{{} keys}}", o.len()),
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                let inner: Vec<String> = keys
                    .into_iter()
                    .map(|k| format!("{k}: {}", go(&o[k], depth - 1)))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }
    go(v, 3)
}

/// A URL with its query values masked (a phone number travels in one).
fn masked(url: &str, query: &[(&str, String)]) -> String {
    if query.is_empty() {
        return url.to_string();
    }
    let q: Vec<String> = query
        .iter()
        .map(|(k, v)| {
            if k.eq_ignore_ascii_case("phoneNumber") {
                format!("{k}=••••")
            } else {
                format!("{k}={v}")
            }
        })
        .collect();
    format!("{url}?{}", q.join("&"))
}

/// Sends read-only calls and records each.
struct Prober {
    http: reqwest::Client,
    calls: Vec<Call>,
}

impl Prober {
    /// Send `request` and decode a 2xx answer as `T`; `summary` says what a decoded one shows. `None` when the call
    /// failed (it is recorded either way).
    async fn probe<T: DeserializeOwned>(
        &mut self,
        name: &'static str,
        method: &'static str,
        url: String,
        request: reqwest::RequestBuilder,
        summary: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        let started = Instant::now();
        let sent = request.send().await;
        let (status, outcome, decoded) = match sent {
            Err(e) => (None, Outcome::Unreachable(redact_reqwest(&e)), None),
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap_or_default();
                if !(200..300).contains(&status) {
                    // The error body's outline only: its message may quote what was sent.
                    let keys = serde_json::from_slice::<Value>(&body)
                        .map(|v| outline(&v))
                        .unwrap_or_else(|_| format!("{} bytes, not JSON", body.len()));
                    (
                        Some(status),
                        Outcome::Refused(format!("answered {status}; body {keys}")),
                        None,
                    )
                } else {
                    match serde_json::from_slice::<T>(&body) {
                        Ok(t) => (Some(status), Outcome::Decoded(summary(&t)), Some(t)),
                        Err(e) => {
                            let keys = serde_json::from_slice::<Value>(&body)
                                .map(|v| outline(&v))
                                .unwrap_or_else(|_| format!("{} bytes, not JSON", body.len()));
                            (
                                Some(status),
                                Outcome::Undecodable {
                                    reason: crate::redact::json_error(&e),
                                    keys,
                                },
                                None,
                            )
                        }
                    }
                }
            }
        };
        self.calls.push(Call {
            name,
            method,
            url,
            status,
            elapsed: started.elapsed(),
            outcome,
        });
        decoded
    }

    /// A read of the API at `base`: `GET`, or `POST` for the reads the API makes POSTs (search, batch check).
    #[allow(clippy::too_many_arguments)]
    async fn read<T: DeserializeOwned>(
        &mut self,
        name: &'static str,
        post: bool,
        base: &str,
        token: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        summary: impl FnOnce(&T) -> String,
    ) -> Option<T> {
        let url = format!("{base}{path}");
        let mut req = if post {
            self.http.post(&url)
        } else {
            self.http.get(&url)
        }
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, "application/json");
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let method = if post { "POST" } else { "GET" };
        self.probe(name, method, masked(&url, query), req, summary)
            .await
    }
}

/// Diagnose the tenant `creds` name; `list` the list (group) whose suppression to report; `timeout` bounds each call;
/// `capacity` the environment's record cap the holdings are compared with.
pub async fn diagnose(
    creds: &Credentials,
    list: Option<&str>,
    timeout: Duration,
    capacity: u64,
) -> Diagnosis {
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .unwrap_or_default();
    let mut p = Prober {
        http: http.clone(),
        calls: Vec::new(),
    };
    let mut d = Diagnosis {
        dialect: creds.dialect,
        calls: Vec::new(),
        capacity: None,
        list: None,
    };
    let token_url = match &creds.password {
        Some(g) => g.auth_url.clone(),
        None => format!("{}/oauth/token", creds.base_url),
    };
    let token: Option<TokenResponse> = p
        .probe(
            "request token",
            "POST",
            token_url,
            token_request(&http, creds, DEFAULT_SCOPES),
            |t: &TokenResponse| format!("a token for {} s", t.expires_in),
        )
        .await;
    if let Some(token) = token {
        let bearer = token.access_token.expose_secret().to_string();
        match creds.dialect {
            Dialect::Admin => admin(&mut p, &mut d, creds, &token, &bearer, list, capacity).await,
            Dialect::V2 => v2(&mut p, &mut d, &creds.base_url, &bearer, list).await,
        }
    }
    d.calls = p.calls;
    d
}

async fn admin(
    p: &mut Prober,
    d: &mut Diagnosis,
    creds: &Credentials,
    token: &TokenResponse,
    bearer: &str,
    list: Option<&str>,
    cap: u64,
) {
    let Some(grant) = &creds.password else {
        return;
    };
    let base = if !creds.base_url.is_empty() {
        versioned_api(&creds.base_url, grant)
    } else {
        let (Some(url), Some(tenant)) = (discovery_url(grant), tenant_of(token)) else {
            d.list = list.map(|name| ListFinding {
                name: name.to_string(),
                found: false,
                suppressing: false,
                detail: "no API endpoint: no baseUrl and the token names no tenant".into(),
            });
            return;
        };
        let query = [("tenantId", tenant)];
        let req = p.http.get(&url).query(&query);
        let found: Option<Discovery> = p
            .probe(
                "discover the API endpoint",
                "GET",
                masked(&url, &query),
                req,
                |x: &Discovery| format!("api_endpoint {}", x.api_endpoint),
            )
            .await;
        match found {
            Some(x) => versioned_api(&x.api_endpoint, grant),
            None => return,
        }
    };
    let groups: Option<wire::GroupsAnswer> = p
        .read(
            "list DNC groups",
            false,
            &base,
            bearer,
            "/dnc-groups",
            &[],
            None,
            |g: &wire::GroupsAnswer| format!("{} groups", g.result_set.dnc_groups.len()),
        )
        .await;
    let skills: Option<wire::Skills> = p
        .read(
            "list skills",
            false,
            &base,
            bearer,
            "/skills",
            &[],
            None,
            |s: &wire::Skills| {
                let outbound = s
                    .skills
                    .iter()
                    .filter(|k| k.is_outbound == Some(true) && k.is_active != Some(false))
                    .count();
                format!("{} skills, {outbound} outbound and active", s.skills.len())
            },
        )
        .await;
    if let (Some(name), Some(groups)) = (list, &groups) {
        let group = groups
            .result_set
            .dnc_groups
            .iter()
            .find(|g| g.dnc_group_name == name)
            .cloned();
        let mut finding = ListFinding {
            name: name.to_string(),
            found: group.is_some(),
            suppressing: false,
            detail: "no DNC group of this name".into(),
        };
        if let Some(group) = group {
            let id = group.dnc_group_id.0.clone();
            let seg = super::path_segment(&id);
            let by_id: Option<wire::GroupsAnswer> = p
                .read(
                    "get DNC group",
                    false,
                    &base,
                    bearer,
                    &format!("/dnc-groups/{seg}"),
                    &[],
                    None,
                    |g: &wire::GroupsAnswer| format!("{} group", g.result_set.dnc_groups.len()),
                )
                .await;
            let scrubbed: Option<wire::ScrubbedSkills> = p
                .read(
                    "list scrubbed skills",
                    false,
                    &base,
                    bearer,
                    &format!("/dnc-groups/{seg}/scrubbed-skills"),
                    &[],
                    None,
                    |s: &wire::ScrubbedSkills| {
                        format!("{} scrubbed skills", s.scrubbed_skills.len())
                    },
                )
                .await;
            let query = [("skip", "0".to_string()), ("top", "1".to_string())];
            let _: Option<wire::RecordsAnswer> = p
                .read(
                    "count the group's records",
                    false,
                    &base,
                    bearer,
                    &format!("/dnc-groups/{seg}/records"),
                    &query,
                    None,
                    |r: &wire::RecordsAnswer| {
                        format!("{} records", r.result_set.total_records.unwrap_or(0))
                    },
                )
                .await;
            let active = by_id
                .and_then(|g| g.result_set.dnc_groups.into_iter().next())
                .unwrap_or(group)
                .into_list()
                .is_active;
            finding.detail = match (&scrubbed, &skills) {
                (Some(scrubbed), Some(skills)) => {
                    let outbound: Vec<String> = scrubbed
                        .scrubbed_skills
                        .iter()
                        .filter(|r| {
                            skills.skills.iter().any(|s| {
                                s.skill_id == r.skill_id
                                    && s.is_outbound == Some(true)
                                    && s.is_active != Some(false)
                            })
                        })
                        .map(|r| r.skill_name.clone())
                        .collect();
                    finding.suppressing = active && !outbound.is_empty();
                    match (active, outbound.is_empty()) {
                        (false, _) => format!("group {id} is inactive"),
                        (true, true) => {
                            format!("group {id} is scrubbed by no active outbound skill")
                        }
                        (true, false) => format!(
                            "group {id} scrubbed by outbound skills {}",
                            outbound.join(", ")
                        ),
                    }
                }
                _ => format!("group {id}: its scrubbed skills could not be read"),
            };
        }
        d.list = Some(finding);
    } else if let Some(name) = list {
        d.list = Some(ListFinding {
            name: name.to_string(),
            found: false,
            suppressing: false,
            detail: "the groups could not be read".into(),
        });
    }
    let query = [("phoneNumber", PROBE_NUMBER.to_string())];
    let _: Option<wire::SearchAnswer> = p
        .read(
            "search DNC groups for a number nobody holds",
            true,
            &base,
            bearer,
            "/dnc-groups/search",
            &query,
            None,
            |s: &wire::SearchAnswer| format!("{} groups hold it", s.search_results.len()),
        )
        .await;
    let calling: Option<wire::CallingLists> = p
        .read(
            "list calling lists",
            false,
            &base,
            bearer,
            "/lists/call-lists",
            &[],
            None,
            |c: &wire::CallingLists| {
                let records: u64 = c
                    .calling_lists
                    .iter()
                    .map(|l| l.total_records.unwrap_or(0))
                    .sum();
                format!("{} calling lists, {records} records", c.calling_lists.len())
            },
        )
        .await;
    if let Some(groups) = &groups {
        let dnc: u64 = groups
            .result_set
            .dnc_groups
            .iter()
            .map(|g| g.valid_records.unwrap_or(0))
            .sum();
        d.capacity = Some(match &calling {
            Some(c) => {
                let lists: u64 = c
                    .calling_lists
                    .iter()
                    .map(|l| l.total_records.or(l.valid_records).unwrap_or(0))
                    .sum();
                let held = dnc + lists;
                format!(
                    "{held} of {cap} records held ({dnc} in DNC groups, {lists} on calling lists); {} free",
                    cap.saturating_sub(held)
                )
            }
            None => format!("{dnc} records in DNC groups; calling lists not counted (unreadable) of the {cap} cap"),
        });
    }
}

async fn v2(p: &mut Prober, d: &mut Diagnosis, base: &str, bearer: &str, list: Option<&str>) {
    let lists: Option<DataList<DncList>> = p
        .read(
            "list DNC lists",
            false,
            base,
            bearer,
            "/api/v2/dnc/lists",
            &[],
            None,
            |l: &DataList<DncList>| format!("{} lists", l.data.len()),
        )
        .await;
    let rules: Option<DataList<DncRule>> = p
        .read(
            "list DNC rules",
            false,
            base,
            bearer,
            "/api/v2/dnc/rules",
            &[],
            None,
            |r: &DataList<DncRule>| format!("{} rules", r.data.len()),
        )
        .await;
    if let Some(name) = list {
        let found = lists
            .as_ref()
            .and_then(|l| l.data.iter().find(|x| x.name == name).cloned());
        let mut finding = ListFinding {
            name: name.to_string(),
            found: found.is_some(),
            suppressing: false,
            detail: if lists.is_some() {
                "no DNC list of this name".into()
            } else {
                "the lists could not be read".into()
            },
        };
        if let Some(l) = found {
            let query = [
                ("listId", l.id.clone()),
                ("limit", "1".to_string()),
                ("offset", "0".to_string()),
            ];
            let _: Option<EntriesPage> = p
                .read(
                    "count the list's entries",
                    false,
                    base,
                    bearer,
                    "/api/v2/dnc/entries",
                    &query,
                    None,
                    |e: &EntriesPage| format!("{} entries", e.paging.total),
                )
                .await;
            let blocking: Vec<String> = rules
                .as_ref()
                .map(|r| {
                    r.data
                        .iter()
                        .filter(|r| r.blocks_outbound(&l.id))
                        .map(|r| r.name.clone())
                        .collect()
                })
                .unwrap_or_default();
            finding.suppressing = l.is_active && !blocking.is_empty();
            finding.detail = match (l.is_active, rules.is_some(), blocking.is_empty()) {
                (false, _, _) => format!("list {} is inactive", l.id),
                (true, false, _) => "the rules could not be read".into(),
                (true, true, true) => format!("no active outbound BLOCK rule names list {}", l.id),
                (true, true, false) => format!("blocked by rules {}", blocking.join(", ")),
            };
        }
        d.list = Some(finding);
    }
    let body = serde_json::json!({"contacts": [{"phoneNumber": format!("+1{PROBE_NUMBER}"), "regionCode": "US",
        "listIds": [], "matchType": "exact"}]});
    let _: Option<CheckResults> = p
        .read(
            "check a number nobody holds",
            true,
            base,
            bearer,
            "/api/v2/dnc/contacts/batch",
            &[],
            Some(&body),
            |c: &CheckResults| format!("{} result", c.results.len()),
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outlines_show_keys_and_types_never_values() {
        let v = json!({"dncGroups": [{"dncGroupId": 7, "name": "+12025550100"}], "totalRecords": 1, "secret": "s3cr3t"});
        let o = outline(&v);
        assert_eq!(
            o,
            "{dncGroups: [{dncGroupId: number, name: string}], secret: string, totalRecords: number}"
        );
        assert!(!o.contains("2025550100") && !o.contains("s3cr3t"));
    }

    #[test]
    fn phone_numbers_in_urls_are_masked() {
        let u = masked(
            "https://x/dnc-groups/search",
            &[("phoneNumber", PROBE_NUMBER.into())],
        );
        assert!(!u.contains(PROBE_NUMBER), "{u}");
        assert_eq!(
            masked("https://x/r", &[("skip", "0".into())]),
            "https://x/r?skip=0"
        );
    }
}
