//! The CXone Admin API's DNC groups, answering in the shapes NICE publishes (`docs/cxone-api.md`; a test
//! compares the structure of every answer with the published samples in `docs/cxone-admin/samples/`): the password
//! grant at `/auth/token`, API discovery, groups, skills and the groups' scrubbed skills, records written with
//! per-record results inside a 2xx, paged back with `skip`/`top`, expired with `DELETE`, the one-number search, and
//! the environment's record cap. No rules, no batch check, no idempotency keys, no jurisdiction or source.
//!
//! Groups share the v2 store (a group is a list whose id is a number; a record an entry of `+1` and its ten
//! digits), so the inspection endpoints, the propagation delay, the clock and the fault rules work the same: the
//! `lists` endpoint class covers groups, skills and calling lists, `entries-post` writes and deletes of records,
//! `entries-get` their paging, `contacts` the search.

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    basic_auth, error, issue_token, DncList, Endpoint, Entry, FaultKind, HeldNumber,
    InjectedRejects, PhoneFormat, PhoneNumberType, Sim, Store,
};

/// A skill of the tenant.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Skill {
    skill_id: u64,
    skill_name: String,
    is_outbound: bool,
    is_active: bool,
}

/// The skills a fresh simulated tenant has: two outbound, one inbound, one inactive outbound.
pub(crate) fn seed_skills() -> Vec<Skill> {
    let skill = |id, name: &str, outbound, active| Skill {
        skill_id: id,
        skill_name: name.into(),
        is_outbound: outbound,
        is_active: active,
    };
    vec![
        skill(4_100_001, "Outbound Sales", true, true),
        skill(4_100_002, "Outbound Collections", true, true),
        skill(4_100_003, "Inbound Support", false, true),
        skill(4_100_004, "Outbound Retired", true, false),
    ]
}

/// The versioned API prefix; any `vNN.0` is served.
const API: &str = "/inContactAPI/services/{version}";

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/auth/token", post(token))
        .route("/.well-known/cxone-configuration", get(discovery))
        .route(
            &format!("{API}/dnc-groups"),
            get(groups_get).post(groups_post),
        )
        .route(&format!("{API}/dnc-groups/search"), post(search))
        .route(
            &format!("{API}/dnc-groups/{{id}}"),
            get(group_get).put(group_put),
        )
        .route(
            &format!("{API}/dnc-groups/{{id}}/scrubbed-skills"),
            get(scrubbed_get),
        )
        .route(
            &format!("{API}/dnc-groups/{{id}}/scrubbed-skills/{{skill}}"),
            post(scrubbed_post).delete(scrubbed_delete),
        )
        .route(
            &format!("{API}/dnc-groups/{{id}}/contributing-skills"),
            get(contributing_get),
        )
        .route(
            &format!("{API}/dnc-groups/{{id}}/records"),
            get(records_get).post(records_post).delete(records_delete),
        )
        .route(&format!("{API}/skills"), get(skills_get))
        .route(&format!("{API}/lists/call-lists"), get(call_lists_get))
}

/// The fault and rate class of an Admin API path.
pub(crate) fn endpoint_of(method: &Method, path: &str) -> Option<Endpoint> {
    if path == "/auth/token" {
        return Some(Endpoint::Token);
    }
    let rest = path.strip_prefix("/inContactAPI/services/")?;
    let (_, rest) = rest.split_once('/')?;
    Some(if rest == "dnc-groups/search" {
        Endpoint::Contacts
    } else if rest.starts_with("dnc-groups/") && rest.ends_with("/records") {
        if method == Method::GET {
            Endpoint::EntriesGet
        } else {
            Endpoint::EntriesPost
        }
    } else {
        Endpoint::Lists
    })
}

/// An unsigned JWT naming the tenant (the simulator checks tokens by value, not by signature).
pub(crate) fn jwt(tenant: &str, nonce: &str) -> String {
    use base64::Engine;
    let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.{}",
        enc(json!({"alg": "none", "typ": "JWT"})),
        enc(json!({"tenantId": tenant, "iss": "cxone-sim", "jti": nonce})),
        nonce
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

async fn token(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<PasswordForm>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "form body expected",
        );
    };
    if form.grant_type.as_deref() != Some("password") {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "password expected",
        );
    }
    let mut s = sim.lock();
    let client = basic_auth(&headers)
        .filter(|(i, sec)| s.config.clients.iter().any(|(ci, cs)| ci == i && cs == sec));
    let Some((client, _)) = client else {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown application or bad secret (HTTP Basic)",
        );
    };
    let key_ok =
        s.config.access_keys.iter().any(|(k, sec)| {
            Some(k) == form.username.as_ref() && Some(sec) == form.password.as_ref()
        });
    if !key_ok {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown access key or bad secret",
        );
    }
    let id_token = jwt(&s.config.tenant_id, "id");
    issue_token(&mut s, client, json!({"id_token": id_token}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TenantQuery {
    tenant_id: Option<String>,
}

async fn discovery(
    State(sim): State<Sim>,
    headers: HeaderMap,
    Query(q): Query<TenantQuery>,
) -> Response {
    let tenant = sim.lock().config.tenant_id.clone();
    if q.tenant_id.as_deref() != Some(tenant.as_str()) {
        return error(StatusCode::NOT_FOUND, "not_found", "unknown tenant");
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    Json(json!({"api_endpoint": format!("http://{host}"), "area": "sim", "tenantId": tenant}))
        .into_response()
}

/// An expiration the simulator stores for a record written without one: answered as `expiredDate: null`.
const NEVER: &str = "2099-12-31T23:59:59Z";

fn never() -> DateTime<Utc> {
    NEVER.parse().unwrap_or_default()
}

/// A time as the Admin API writes it (`2026-11-20T09:15:42.517Z`).
fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A group as published: `dncGroupId` (a number), name, description, `validRecords` (live records), `isActive`,
/// `isRemoved`, `createDate`, `lastUpdateTime`.
fn group_json(s: &Store, l: &DncList) -> Value {
    let now = s.now();
    let live = s.by_list.get(&l.id).map_or(0, |v| {
        v.iter().filter(|&&i| s.entries[i].expiration > now).count()
    });
    json!({
        "dncGroupId": l.id.parse::<u64>().unwrap_or_default(),
        "dncGroupName": l.name,
        "dncGroupDescription": l.description,
        "validRecords": live,
        "isActive": l.is_active,
        "isRemoved": false,
        "createDate": stamp(s.base),
        "lastUpdateTime": stamp(now),
    })
}

/// `GET /dnc-groups`: every group, `{"resultSet": {"totalGroups", "dncGroups"}}`.
async fn groups_get(State(sim): State<Sim>) -> Response {
    let s = sim.lock();
    let groups: Vec<Value> = s.lists.iter().map(|l| group_json(&s, l)).collect();
    Json(json!({"resultSet": {"totalGroups": groups.len(), "dncGroups": groups}})).into_response()
}

/// `GET /dnc-groups/{id}`: `{"resultSet": {"dncGroups": [group]}}`.
async fn group_get(State(sim): State<Sim>, Path((_, id)): Path<(String, String)>) -> Response {
    let s = sim.lock();
    match s.lists.iter().find(|l| l.id == id) {
        Some(l) => Json(json!({"resultSet": {"dncGroups": [group_json(&s, l)]}})).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such DNC group"),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewGroup {
    dnc_group_name: String,
    #[serde(default)]
    dnc_group_description: String,
}

async fn groups_post(State(sim): State<Sim>, body: Bytes) -> Response {
    let Ok(new) = serde_json::from_slice::<NewGroup>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "dncGroupName required",
        );
    };
    if new.dnc_group_name.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "dncGroupName required",
        );
    }
    let mut s = sim.lock();
    if s.lists.iter().any(|l| l.name == new.dnc_group_name) {
        return error(
            StatusCode::CONFLICT,
            "conflict",
            "a DNC group with this name exists",
        );
    }
    s.next_id += 1;
    let id = s.next_id.to_string();
    let list = DncList {
        id: id.clone(),
        name: new.dnc_group_name,
        description: new.dnc_group_description,
        kind: "DNC_GROUP".into(),
        default_expiration_date: NEVER.into(),
        // Unpublished: active or inactive until `PUT ?isActive=true`, as told.
        is_active: s.config.admin.new_group_active,
    };
    let group = group_json(&s, &list);
    s.lists.push(list);
    (StatusCode::CREATED, Json(json!({"dncGroups": [group]}))).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupUpdate {
    dnc_group_name: Option<String>,
    dnc_group_description: Option<String>,
    is_active: Option<bool>,
}

async fn group_put(
    State(sim): State<Sim>,
    Path((_, id)): Path<(String, String)>,
    Query(u): Query<GroupUpdate>,
) -> Response {
    let mut s = sim.lock();
    let Some(l) = s.lists.iter_mut().find(|l| l.id == id) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such DNC group");
    };
    if let Some(n) = u.dnc_group_name {
        l.name = n;
    }
    if let Some(d) = u.dnc_group_description {
        l.description = d;
    }
    if let Some(a) = u.is_active {
        l.is_active = a;
    }
    let l = l.clone();
    // The create shape, as published.
    Json(json!({"dncGroups": [group_json(&s, &l)]})).into_response()
}

async fn skills_get(State(sim): State<Sim>) -> Response {
    let s = sim.lock();
    Json(json!({"totalRecords": s.skills.len(), "skills": s.skills})).into_response()
}

async fn scrubbed_get(State(sim): State<Sim>, Path((_, id)): Path<(String, String)>) -> Response {
    let s = sim.lock();
    if !s.lists.iter().any(|l| l.id == id) {
        return error(StatusCode::NOT_FOUND, "not_found", "no such DNC group");
    }
    let ids = s.scrubbed.get(&id).cloned().unwrap_or_default();
    let skills: Vec<Value> = s
        .skills
        .iter()
        .filter(|k| ids.contains(&k.skill_id))
        .map(|k| json!({"skillId": k.skill_id, "skillName": k.skill_name}))
        .collect();
    Json(json!({
        "totalRecords": skills.len(),
        "_links": {"self": format!("/dnc-groups/{id}/scrubbed-skills")},
        "scrubbedSkills": skills,
    }))
    .into_response()
}

/// No skill feeds a simulated group.
async fn contributing_get(
    State(sim): State<Sim>,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let s = sim.lock();
    if !s.lists.iter().any(|l| l.id == id) {
        return error(StatusCode::NOT_FOUND, "not_found", "no such DNC group");
    }
    Json(json!({
        "totalRecords": 0,
        "_links": {"self": format!("/dnc-groups/{id}/contributing-skills")},
        "contributingSkills": [],
    }))
    .into_response()
}

fn link(sim: &Sim, group: &str, skill: &str, on: bool) -> Response {
    let mut s = sim.lock();
    if !s.lists.iter().any(|l| l.id == group) {
        return error(StatusCode::NOT_FOUND, "not_found", "no such DNC group");
    }
    let Some(skill) = skill
        .parse::<u64>()
        .ok()
        .filter(|k| s.skills.iter().any(|x| x.skill_id == *k))
    else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such skill");
    };
    let ids = s.scrubbed.entry(group.to_string()).or_default();
    ids.retain(|k| *k != skill);
    if on {
        ids.push(skill);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn scrubbed_post(
    State(sim): State<Sim>,
    Path((_, id, skill)): Path<(String, String, String)>,
) -> Response {
    link(&sim, &id, &skill, true)
}

async fn scrubbed_delete(
    State(sim): State<Sim>,
    Path((_, id, skill)): Path<(String, String, String)>,
) -> Response {
    link(&sim, &id, &skill, false)
}

/// Ten digits of a North American number (area code and exchange starting 2–9), as the Admin API holds them; a
/// leading `1` or `+1` is accepted and dropped.
fn nanp10(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let ten = match digits.len() {
        10 => digits,
        11 if digits.starts_with('1') => digits[1..].to_string(),
        _ => return None,
    };
    let b = ten.as_bytes();
    (b[0] >= b'2' && b[3] >= b'2').then_some(ten)
}

/// `formattedPhone`, in the format the simulator is told.
fn formatted(format: PhoneFormat, ten: &str) -> String {
    let (a, b, c) = (&ten[..3], &ten[3..6], &ten[6..]);
    match format {
        PhoneFormat::Parenthesized => format!("({a}) {b}-{c}"),
        PhoneFormat::Digits => ten.to_string(),
        PhoneFormat::E164 => format!("+1{ten}"),
        PhoneFormat::Dashed => format!("1-{a}-{b}-{c}"),
    }
}

fn records_of(body: &[u8]) -> Option<Vec<Value>> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("dncGroupRecords")?
        .as_array()
        .cloned()
}

fn holdings(s: &Store) -> u64 {
    s.entries.len() as u64 + s.config.calling_list_records
}

async fn records_post(
    State(sim): State<Sim>,
    Path((_, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    let injected = req.extensions().get::<InjectedRejects>().cloned();
    let Ok(body) = axum::body::to_bytes(req.into_body(), 16 << 20).await else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable body",
        );
    };
    let Some(items) = records_of(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`dncGroupRecords` array required",
        );
    };
    let mut s = sim.lock();
    let behaviour = s.config.admin;
    if items.len() > s.config.max_entries_per_request {
        let status = StatusCode::from_u16(behaviour.too_large_status)
            .unwrap_or(StatusCode::PAYLOAD_TOO_LARGE);
        return error(
            status,
            "payload_too_large",
            "too many records in one request",
        );
    }
    // A strict tenant refuses the whole request when `phoneNumber` has the other JSON type (model binding).
    let wrong_type = items.iter().any(|item| {
        matches!(
            (behaviour.phone_number_type, item.get("phoneNumber")),
            (PhoneNumberType::Number, Some(Value::String(_)))
                | (PhoneNumberType::String, Some(Value::Number(_)))
        )
    });
    if wrong_type {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request is invalid: phoneNumber has the wrong type",
        );
    }
    if !s.lists.iter().any(|l| l.id == id) {
        return error(StatusCode::NOT_FOUND, "not_found", "no such DNC group");
    }
    let injected = injected
        .filter(|InjectedRejects(index, _)| s.claim_fault(*index))
        .map(|InjectedRejects(_, kind)| kind);
    let now = s.now();
    let mut results = Vec::with_capacity(items.len());
    let mut errors = 0usize;
    for item in &items {
        let raw = item
            .get("phoneNumber")
            .map(|v| match v {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        // A failed record names its number as sent (digits only), a written one in `formattedPhone`'s format.
        let mut fail = |message: &str, results: &mut Vec<Value>| {
            errors += 1;
            let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
            results.push(json!({"success": false, "error": message, "formattedPhone": digits}));
        };
        let Some(ten) = nanp10(&raw) else {
            fail("Invalid phone number", &mut results);
            continue;
        };
        if let Some(FaultKind::RejectEntries { code, per_entry }) = &injected {
            if s.random() < *per_entry {
                fail(code, &mut results);
                continue;
            }
        }
        let expiration = match item.get("expiredDate") {
            None | Some(Value::Null) => Some(never()),
            Some(Value::String(e)) => DateTime::parse_from_rfc3339(e)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            _ => None,
        };
        let Some(expiration) = expiration.filter(|e| *e > now) else {
            fail("Invalid expiredDate", &mut results);
            continue;
        };
        let ok = json!({"success": true, "error": "", "formattedPhone": formatted(behaviour.formatted_phone, &ten)});
        if let Some(FaultKind::LoseWrites { per_entry }) = &injected {
            if s.random() < *per_entry {
                results.push(ok);
                continue;
            }
        }
        let phone = format!("+1{ten}");
        let existing = s.by_number.get(&(id.clone(), phone.clone())).copied();
        match existing {
            Some(_)
                if behaviour.held_number == HeldNumber::Error
                    && existing.is_some_and(|i| s.entries[i].expiration > now) =>
            {
                fail("Phone number already exists in the DNC group", &mut results);
                continue;
            }
            // Adding a number the group holds changes nothing but a later expiration.
            Some(i) if s.entries[i].expiration > now => {
                if s.entries[i].expiration < expiration {
                    s.entries[i].expiration = expiration;
                }
            }
            _ => {
                if existing.is_none() && holdings(&s) >= s.config.capacity {
                    fail("Environment record limit reached", &mut results);
                    continue;
                }
                s.write_entry(
                    existing,
                    Entry {
                        id: ten.clone(),
                        phone,
                        list_id: id.clone(),
                        jurisdiction: String::new(),
                        expiration,
                        source: String::new(),
                        created_at: now,
                        visible_at: now,
                    },
                );
            }
        }
        results.push(ok);
    }
    Json(json!({"resultSet": {"errorCount": errors, "recordResults": results}})).into_response()
}

/// `DELETE …/records`: the records stop suppressing now (expired in place, as CXone keeps history). Answered
/// without `resultSet`, as published.
async fn records_delete(
    State(sim): State<Sim>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(items) = records_of(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`dncGroupRecords` array required",
        );
    };
    let mut s = sim.lock();
    let format = s.config.admin.formatted_phone;
    let now = s.now();
    let mut results = Vec::new();
    let mut errors = 0;
    for item in &items {
        let raw = match item.get("phoneNumber") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let ten = nanp10(&raw);
        let found = ten
            .as_ref()
            .and_then(|ten| s.by_number.get(&(id.clone(), format!("+1{ten}"))).copied());
        match (found, ten) {
            (Some(i), Some(ten)) => {
                s.entries[i].expiration = now;
                results.push(json!({"success": true, "error": "", "formattedPhone": formatted(format, &ten)}));
            }
            _ => {
                errors += 1;
                let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
                results.push(
                    json!({"success": false, "error": "Record not found", "formattedPhone": digits}),
                );
            }
        }
    }
    Json(json!({"errorCount": errors, "recordResults": results})).into_response()
}

#[derive(Deserialize)]
struct Paging {
    skip: Option<usize>,
    top: Option<usize>,
}

async fn records_get(
    State(sim): State<Sim>,
    Path((_, id)): Path<(String, String)>,
    Query(p): Query<Paging>,
) -> Response {
    let top = p.top.unwrap_or(100);
    if top == 0 || top > 1000 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "top must be 1..=1000",
        );
    }
    let skip = p.skip.unwrap_or(0);
    let s = sim.lock();
    if !s.lists.iter().any(|l| l.id == id) {
        return error(StatusCode::NOT_FOUND, "not_found", "no such DNC group");
    }
    let format = s.config.admin.formatted_phone;
    let all: &[usize] = s.by_list.get(&id).map(Vec::as_slice).unwrap_or_default();
    let page: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(top)
        .map(|&i| {
            let e = &s.entries[i];
            let ten = e.phone.trim_start_matches("+1");
            let expired = (e.expiration != never()).then(|| stamp(e.expiration));
            json!({
                "recordId": 88_000_000 + i as u64,
                "createdBy": 4011,
                "phoneNumber": ten,
                "formattedPhone": formatted(format, ten),
                "expiredDate": expired,
                "dateCollected": stamp(e.created_at),
                "lastUpdateTime": stamp(e.created_at),
            })
        })
        .collect();
    Json(json!({"resultSet": {"totalRecords": all.len(), "dncRecords": page}})).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchQuery {
    phone_number: Option<String>,
}

/// The groups whose records hold the number now (propagated and not expired), active or not.
async fn search(State(sim): State<Sim>, Query(q): Query<SearchQuery>) -> Response {
    let Some(ten) = q.phone_number.as_deref().and_then(nanp10) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "phoneNumber of ten digits required",
        );
    };
    let s = sim.lock();
    let now = s.now();
    let format = s.config.admin.formatted_phone;
    let phone = format!("+1{ten}");
    let hits: Vec<Value> = s
        .lists
        .iter()
        .filter_map(|l| {
            let i = *s.by_number.get(&(l.id.clone(), phone.clone()))?;
            let e = &s.entries[i];
            (e.visible_at <= now && e.expiration > now).then(|| {
                json!({
                    "dncGroupId": l.id.parse::<u64>().unwrap_or_default(),
                    "dncGroupName": l.name,
                    "dncGroupDescription": l.description,
                    "formattedPhone": formatted(format, &ten),
                    "expiredDate": (e.expiration != never()).then(|| stamp(e.expiration)),
                    "dateCollected": stamp(e.created_at),
                    "lastUpdateTime": stamp(e.created_at),
                })
            })
        })
        .collect();
    Json(json!({"searchResults": hits})).into_response()
}

async fn call_lists_get(State(sim): State<Sim>) -> Response {
    let s = sim.lock();
    let n = s.config.calling_list_records;
    let when = stamp(s.base);
    let lists = if n == 0 {
        Vec::new()
    } else {
        vec![json!({
            "listId": 5120, "listName": "Simulated calling list", "prospectiveContactCount": n,
            "status": "Active", "totalRecords": n, "invalidRecords": 0, "validRecords": n,
            "finalizedRecords": 0, "createDate": when, "uploadDate": when, "updateDate": when,
            "removeDate": null,
        })]
    };
    Json(json!({
        "totalRecords": lists.len(),
        "_links": {"self": "/lists/call-lists"},
        "callingLists": lists,
    }))
    .into_response()
}
