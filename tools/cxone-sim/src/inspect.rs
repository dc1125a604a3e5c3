//! Inspection outside the CXone paths (`/_sim/`): state, request log, reset, faults, clock, token expiry.

use super::*;

pub(crate) fn state_json(s: &Store) -> Value {
    let mut per_list: HashMap<&str, usize> = HashMap::new();
    let mut pairs: HashMap<(&str, &str), usize> = HashMap::new();
    for e in &s.entries {
        *per_list.entry(e.list_id.as_str()).or_default() += 1;
        *pairs
            .entry((e.list_id.as_str(), e.phone.as_str()))
            .or_default() += 1;
    }
    let duplicates: usize = pairs.values().map(|n| n - 1).sum();
    json!({
        "lists": s.lists.iter().map(|l| json!({"id": l.id, "name": l.name, "isActive": l.is_active, "entries": per_list.get(l.id.as_str()).copied().unwrap_or(0)})).collect::<Vec<_>>(),
        "rules": s.rules,
        "entries": s.entries.len(),
        "duplicates": duplicates,
        "tokensIssued": s.tokens_issued,
        "dialect": s.config.dialect,
        "scrubbed": s.scrubbed,
        "requests": s.log.len(),
        "now": s.now().to_rfc3339(),
    })
}

pub(crate) async fn sim_state(State(sim): State<Sim>) -> Response {
    Json(sim.state()).into_response()
}

pub(crate) async fn sim_requests(State(sim): State<Sim>) -> Response {
    Json(sim.requests()).into_response()
}

pub(crate) async fn sim_reset(State(sim): State<Sim>) -> Response {
    let mut s = sim.lock();
    let config = s.config.clone();
    *s = Store::new(config);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn sim_faults(State(sim): State<Sim>, body: Bytes) -> Response {
    match serde_json::from_slice::<Vec<FaultRule>>(&body) {
        Ok(faults) => {
            sim.set_faults(faults);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    }
}

#[derive(Deserialize)]
pub(crate) struct Advance {
    pub(crate) seconds: f64,
}

pub(crate) async fn sim_advance(State(sim): State<Sim>, Json(a): Json<Advance>) -> Response {
    sim.advance(a.seconds);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn sim_expire_tokens(State(sim): State<Sim>) -> Response {
    sim.expire_tokens();
    StatusCode::NO_CONTENT.into_response()
}
