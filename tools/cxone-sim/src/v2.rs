//! Dialect `v2` (the contract in `docs/cxone-api.md`): OAuth client credentials, lists, rules, entries with idempotency
//! keys, paging, the contacts batch check with rule evaluation.

use super::*;

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    pub(crate) grant_type: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    pub(crate) scope: Option<String>,
}

pub(crate) const SCOPES: [&str; 4] = ["dnc:read", "dnc:write", "tenant:read", "outbound:read"];

pub(crate) async fn token(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let form: TokenForm = match serde_urlencoded_parse(&body) {
        Some(f) => f,
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "form body expected",
            )
        }
    };
    let (mut id, mut secret) = (form.client_id.clone(), form.client_secret.clone());
    if let Some((i, s)) = basic_auth(&headers) {
        id = Some(i);
        secret = Some(s);
    }
    if form.grant_type.as_deref() != Some("client_credentials") {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "client_credentials expected",
        );
    }
    let mut s = sim.lock();
    let known = s
        .config
        .clients
        .iter()
        .any(|(i, sec)| Some(i) == id.as_ref() && Some(sec) == secret.as_ref());
    if !known {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or bad secret",
        );
    }
    let scope = form.scope.unwrap_or_default();
    if scope.split_whitespace().any(|sc| !SCOPES.contains(&sc)) {
        return error(StatusCode::BAD_REQUEST, "invalid_scope", "unknown scope");
    }
    let client = id.unwrap_or_default();
    issue_token(&mut s, client, json!({"scope": scope}))
}

pub(crate) fn serde_urlencoded_parse(body: &[u8]) -> Option<TokenForm> {
    serde_urlencoded::from_bytes(body).ok()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewList {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(rename = "type", default = "manual")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) default_expiration_date: Option<String>,
    #[serde(default = "yes")]
    pub(crate) is_active: bool,
}

pub(crate) fn manual() -> String {
    "MANUAL".into()
}

pub(crate) async fn lists_get(State(sim): State<Sim>) -> Response {
    Json(json!({"data": sim.lock().lists})).into_response()
}

pub(crate) async fn list_get(State(sim): State<Sim>, Path(id): Path<String>) -> Response {
    match sim.lock().lists.iter().find(|l| l.id == id) {
        Some(l) => Json(l).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such list"),
    }
}

pub(crate) async fn lists_post(State(sim): State<Sim>, body: Bytes) -> Response {
    let Ok(new) = serde_json::from_slice::<NewList>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "malformed list");
    };
    if !["MANUAL", "SYSTEM"].contains(&new.kind.as_str()) || new.name.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "name required, type MANUAL or SYSTEM",
        );
    }
    let mut s = sim.lock();
    if s.lists.iter().any(|l| l.name == new.name) {
        return error(
            StatusCode::CONFLICT,
            "conflict",
            "a list with this name exists",
        );
    }
    let list = DncList {
        id: s.id("list"),
        name: new.name,
        description: new.description,
        kind: new.kind,
        default_expiration_date: new
            .default_expiration_date
            .unwrap_or_else(|| "2099-12-31T23:59:59Z".into()),
        is_active: new.is_active,
    };
    s.lists.push(list.clone());
    (StatusCode::CREATED, Json(list)).into_response()
}

pub(crate) fn valid_rule(r: &DncRule) -> bool {
    ["INBOUND", "OUTBOUND", "BOTH"].contains(&r.scope.as_str())
        && ["BLOCK", "ALLOW"].contains(&r.action.as_str())
        && !r.name.trim().is_empty()
}

pub(crate) async fn rules_get(State(sim): State<Sim>) -> Response {
    Json(json!({"data": sim.lock().rules})).into_response()
}

/// Parse and validate a rule body: shape, scope, action, and that every list it names exists. `Err` is the message
/// of a 400 answer.
pub(crate) fn parse_rule(body: &[u8], s: &Store) -> Result<DncRule, String> {
    let rule = serde_json::from_slice::<DncRule>(body).map_err(|_| "malformed rule".to_string())?;
    if !valid_rule(&rule) {
        return Err("bad scope, action or name".into());
    }
    if let Some(missing) = rule
        .list_ids
        .iter()
        .find(|id| !s.lists.iter().any(|l| &l.id == *id))
    {
        return Err(format!("unknown list {missing}"));
    }
    Ok(rule)
}

pub(crate) async fn rules_post(State(sim): State<Sim>, body: Bytes) -> Response {
    let mut s = sim.lock();
    let mut rule = match parse_rule(&body, &s) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", &message),
    };
    rule.id = s.id("rule");
    s.rules.push(rule.clone());
    (StatusCode::CREATED, Json(rule)).into_response()
}

pub(crate) async fn rules_put(
    State(sim): State<Sim>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut s = sim.lock();
    let mut rule = match parse_rule(&body, &s) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", &message),
    };
    let Some(slot) = s.rules.iter().position(|r| r.id == id) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such rule");
    };
    rule.id = id;
    s.rules[slot] = rule.clone();
    Json(rule).into_response()
}

pub(crate) fn is_e164(p: &str) -> bool {
    let Some(d) = p.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&d.len()) && !d.starts_with('0') && d.bytes().all(|b| b.is_ascii_digit())
}

pub(crate) fn is_jurisdiction(j: &str) -> bool {
    let b = j.as_bytes();
    (b.len() == 2 && b.iter().all(u8::is_ascii_uppercase))
        || (b.len() >= 4
            && b.len() <= 6
            && b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2] == b'-'
            && b[3..]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
}

pub(crate) fn payload_hash(v: &Value) -> u64 {
    use sha2::{Digest, Sha256};
    let mut fields = v.clone();
    if let Some(o) = fields.as_object_mut() {
        o.remove("idempotencyKey");
    }
    let digest = Sha256::digest(fields.to_string().as_bytes());
    u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

pub(crate) async fn entries_post(State(sim): State<Sim>, req: Request) -> Response {
    let injected = req.extensions().get::<InjectedRejects>().cloned();
    let Ok(body) = axum::body::to_bytes(req.into_body(), 16 << 20).await else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unreadable body",
        );
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "malformed JSON");
    };
    let Some(items) = v.get("data").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`data` array required",
        );
    };
    let mut s = sim.lock();
    if items.len() > s.config.max_entries_per_request {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "too many entries in one request",
        );
    }
    // The entry fault takes effect from here on: count it now.
    let injected = injected
        .filter(|InjectedRejects(index, _)| s.claim_fault(*index))
        .map(|InjectedRejects(_, kind)| kind);
    let now = s.now();
    let mut data = Vec::new();
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let text = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (phone, list_id, jurisdiction, key) = (
            text("phoneNumber"),
            text("listId"),
            text("jurisdiction"),
            text("idempotencyKey"),
        );
        let mut reject = |code: &str, message: &str| {
            errors.push(
                json!({"index": index, "phoneNumber": phone, "code": code, "message": message}),
            );
        };
        if key.is_empty() || key.len() > 128 {
            drop(s);
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "idempotencyKey of 1 to 128 characters required",
            );
        }
        if let Some(FaultKind::RejectEntries { code, per_entry }) = &injected {
            if s.random() < *per_entry {
                reject(code, "injected rejection");
                continue;
            }
        }
        if let Some(FaultKind::LoseWrites { per_entry }) = &injected {
            if !s.idem.contains_key(&key) && s.random() < *per_entry {
                let id = s.id("lost");
                data.push(json!({"index": index, "id": id, "phoneNumber": phone, "listId": list_id, "status": "created"}));
                continue;
            }
        }
        let payload = payload_hash(item);
        if let Some(rec) = s.idem.get(&key) {
            if rec.payload == payload {
                data.push(json!({"index": index, "id": rec.id, "phoneNumber": phone, "listId": list_id, "status": rec.status}));
            } else {
                reject(
                    "IDEMPOTENCY_CONFLICT",
                    "key reused with a different payload",
                );
            }
            continue;
        }
        if !is_e164(&phone) {
            reject("INVALID_PHONE_NUMBER", "phoneNumber must be E.164");
            continue;
        }
        if !is_jurisdiction(&jurisdiction) {
            reject(
                "INVALID_JURISDICTION",
                "jurisdiction must be ISO 3166-1 or 3166-2",
            );
            continue;
        }
        let Some(list) = s
            .lists
            .iter()
            .find(|l| l.id == list_id && l.is_active)
            .cloned()
        else {
            reject("UNKNOWN_LIST", "no active list with this id");
            continue;
        };
        let expiration = match item.get("expirationDate") {
            None | Some(Value::Null) => DateTime::parse_from_rfc3339(&list.default_expiration_date)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            Some(Value::String(e)) if e.ends_with('Z') => DateTime::parse_from_rfc3339(e)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            _ => None,
        };
        let Some(expiration) = expiration.filter(|e| *e > now) else {
            reject(
                "INVALID_EXPIRATION",
                "expirationDate must be RFC 3339 UTC in the future",
            );
            continue;
        };
        // An expired entry suppresses nothing: a write of its number replaces it in place (a new record, `created`),
        // which is how a run re-writes it. A live one answers `exists`.
        let existing = s.by_number.get(&(list_id.clone(), phone.clone())).copied();
        let (id, status) = match existing {
            Some(i) if s.entries[i].expiration > now => (s.entries[i].id.clone(), "exists"),
            _ => {
                let id = s.id("entry");
                s.write_entry(
                    existing,
                    Entry {
                        id: id.clone(),
                        phone: phone.clone(),
                        list_id: list_id.clone(),
                        jurisdiction,
                        expiration,
                        source: text("source"),
                        created_at: now,
                        visible_at: now,
                    },
                );
                (id, "created")
            }
        };
        s.idem.insert(
            key,
            IdemRecord {
                payload,
                id: id.clone(),
                status,
            },
        );
        data.push(json!({"index": index, "id": id, "phoneNumber": phone, "listId": list_id, "status": status}));
    }
    if errors.is_empty() {
        (StatusCode::CREATED, Json(json!({"data": data}))).into_response()
    } else {
        (
            StatusCode::OK,
            Json(json!({"data": data, "errors": errors})),
        )
            .into_response()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EntriesQuery {
    pub(crate) list_id: Option<String>,
    pub(crate) limit: Option<usize>,
    pub(crate) offset: Option<usize>,
}

pub(crate) async fn entries_get(State(sim): State<Sim>, Query(q): Query<EntriesQuery>) -> Response {
    let Some(list_id) = q.list_id else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "listId required",
        );
    };
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "limit must be 1..=1000",
        );
    }
    let offset = q.offset.unwrap_or(0);
    let s = sim.lock();
    if !s.lists.iter().any(|l| l.id == list_id) {
        return error(StatusCode::NOT_FOUND, "not_found", "no such list");
    }
    let all: &[usize] = s
        .by_list
        .get(&list_id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|&i| {
            let e = &s.entries[i];
            json!({
                "id": e.id, "phoneNumber": e.phone, "listId": e.list_id, "jurisdiction": e.jurisdiction,
                "expirationDate": e.expiration.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "source": e.source,
                "createdAt": e.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            })
        })
        .collect();
    Json(json!({"data": page, "paging": {"offset": offset, "limit": limit, "total": all.len()}}))
        .into_response()
}

pub(crate) async fn contacts_batch(State(sim): State<Sim>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "malformed JSON");
    };
    let Some(contacts) = v.get("contacts").and_then(Value::as_array) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`contacts` array required",
        );
    };
    if contacts.len() > 1000 {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "at most 1000 contacts per request",
        );
    }
    let s = sim.lock();
    let now = s.now();
    let mut rules: Vec<&DncRule> = s
        .rules
        .iter()
        .filter(|r| r.is_active && (r.scope == "OUTBOUND" || r.scope == "BOTH"))
        .collect();
    rules.sort_by_key(|r| r.priority);
    let active_lists: HashSet<&str> = s
        .lists
        .iter()
        .filter(|l| l.is_active)
        .map(|l| l.id.as_str())
        .collect();
    let results: Vec<Value> = contacts
        .iter()
        .map(|c| {
            let phone = c.get("phoneNumber").and_then(Value::as_str).unwrap_or_default();
            let prefix = c.get("matchType").and_then(Value::as_str) == Some("prefix");
            if !is_e164(phone) && !prefix {
                return json!({"phoneNumber": phone, "status": "error", "reason": "INVALID_PHONE_NUMBER", "listMatches": []});
            }
            let wanted: Option<Vec<&str>> = c
                .get("listIds")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .map(|a| a.iter().filter_map(Value::as_str).collect());
            let holds = |list: &str| -> bool {
                let visible = |e: &Entry| e.visible_at <= now && e.expiration > now;
                if prefix {
                    s.entries.iter().any(|e| e.list_id == list && e.phone.starts_with(phone) && visible(e))
                } else {
                    s.by_number.get(&(list.to_string(), phone.to_string())).is_some_and(|&i| visible(&s.entries[i]))
                }
            };
            for rule in &rules {
                let matches: Vec<&str> = rule
                    .list_ids
                    .iter()
                    .map(String::as_str)
                    .filter(|l| active_lists.contains(l))
                    .filter(|l| wanted.as_ref().is_none_or(|w| w.contains(l)))
                    .filter(|l| holds(l))
                    .collect();
                if !matches.is_empty() {
                    let status = if rule.action == "BLOCK" { "suppressed" } else { "allowed" };
                    return json!({"phoneNumber": phone, "status": status, "reason": format!("rule {}", rule.name), "listMatches": matches});
                }
            }
            json!({"phoneNumber": phone, "status": "allowed", "reason": "no matching rule", "listMatches": []})
        })
        .collect();
    Json(json!({"results": results})).into_response()
}
