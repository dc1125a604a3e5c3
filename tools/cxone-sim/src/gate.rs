//! In front of every CXone handler, whatever the dialect: the request log, fault injection, authentication and
//! the tenant's rate limits; and the token issuance both dialects share.

use super::*;

pub(crate) fn endpoint_of(method: &Method, path: &str) -> Option<Endpoint> {
    if let Some(ep) = admin::endpoint_of(method, path) {
        return Some(ep);
    }
    Some(match path {
        "/oauth/token" => Endpoint::Token,
        p if p.starts_with("/api/v2/dnc/lists") => Endpoint::Lists,
        p if p.starts_with("/api/v2/dnc/rules") => Endpoint::Rules,
        "/api/v2/dnc/entries" if method == Method::POST => Endpoint::EntriesPost,
        "/api/v2/dnc/entries" => Endpoint::EntriesGet,
        "/api/v2/dnc/contacts/batch" => Endpoint::Contacts,
        _ => return None,
    })
}

pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

/// A response whose body fails at once: the connection is dropped without a complete message.
pub(crate) fn reset_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected reset",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, "1000")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Request log, rate limits, authentication and fault injection in front of every CXone handler.
pub(crate) async fn log_requests(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let endpoint = endpoint_of(&method, &path);
    // Buffer the body to count its items for the log (bodies are small: at most 1000 contacts).
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let items = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
        v.get("data")
            .or_else(|| v.get("contacts"))
            .or_else(|| v.get("dncGroupRecords"))
            .and_then(Value::as_array)
            .map(Vec::len)
    });
    let req = Request::from_parts(parts, Body::from(bytes));
    let response = match endpoint {
        Some(ep) => guarded(&sim, ep, req, next).await,
        None => next.run(req).await,
    };
    let mut s = sim.lock();
    let seq = s.log.len() as u64 + 1;
    let status = if response.headers().contains_key("x-sim-reset") {
        0
    } else {
        response.status().as_u16()
    };
    s.log.push(LoggedRequest {
        seq,
        method: method.to_string(),
        path,
        status,
        items,
    });
    response
}

pub(crate) async fn guarded(sim: &Sim, ep: Endpoint, mut req: Request, next: Next) -> Response {
    let faults = sim.lock().faults_for(ep);
    let mut applied_then_503 = false;
    let mut tamper: Option<String> = None;
    for (index, fault) in &faults {
        match fault {
            FaultKind::Slow { ms } => tokio::time::sleep(Duration::from_millis(*ms)).await,
            FaultKind::TooManyRequests { retry_after } => {
                let mut r = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "injected 429",
                );
                if let Some(secs) = retry_after {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
                }
                return r;
            }
            FaultKind::ServerError { status } => {
                let status =
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return error(status, "server_error", "injected server error");
            }
            FaultKind::Reset => {
                let mut r = reset_response();
                r.headers_mut()
                    .insert("x-sim-reset", HeaderValue::from_static("1"));
                return r;
            }
            FaultKind::ExpireTokens => sim.expire_tokens(),
            FaultKind::AppliedThen503 => applied_then_503 = true,
            FaultKind::TamperResults { mode } => tamper = Some(mode.clone()),
            FaultKind::RejectEntries { .. } | FaultKind::LoseWrites { .. } => {
                req.extensions_mut()
                    .insert(InjectedRejects(*index, fault.clone()));
            }
        }
    }
    if ep != Endpoint::Token {
        let mut s = sim.lock();
        // Authentication first: an unauthenticated request does not spend the tenant's rate.
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let now = s.now();
        let valid = token
            .as_ref()
            .and_then(|t| s.tokens.get(t))
            .is_some_and(|(_, exp)| *exp > now);
        if !valid {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "missing, unknown or expired token",
            );
        }
        let hint = s.config.dialect == SimDialect::V2;
        let bucket = if ep == Endpoint::Contacts {
            &mut s.check_bucket
        } else {
            &mut s.entries_bucket
        };
        if let Err(wait) = bucket.take() {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "tenant rate limit exceeded",
            );
            // The Admin API answers 429 without a reliable Retry-After: its clients back off on their own.
            if hint {
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(wait.ceil().max(1.0) as u64),
                );
            }
            return r;
        }
    }
    let response = next.run(req).await;
    if applied_then_503 {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "injected: write applied, answered 503",
        );
    }
    match tamper {
        Some(mode) if response.status().is_success() => tamper_results(response, &mode).await,
        _ => response,
    }
}

/// The `tamper-results` fault: the same answer with its `results` reversed or one of them renumbered.
pub(crate) async fn tamper_results(response: Response, mode: &str) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "unreadable body",
        );
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Some(results) = v.get_mut("results").and_then(Value::as_array_mut) {
        match mode {
            "renumber" => {
                if let Some(first) = results.first_mut() {
                    first["phoneNumber"] = json!("+19999999999");
                }
            }
            _ => results.reverse(),
        }
    }
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(v.to_string()))
}

/// An entry fault for the handler to apply: its rule's index and kind.
#[derive(Clone)]
pub(crate) struct InjectedRejects(pub(crate) usize, pub(crate) FaultKind);

/// Issue a token to `client` within its token-request rate, its answer `extra` fields added.
pub(crate) fn issue_token(s: &mut Store, client: String, extra: Value) -> Response {
    let limit = s.config.token_requests_per_minute as usize;
    let times = s.token_times.entry(client.clone()).or_default();
    let now = Instant::now();
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
    {
        times.pop_front();
    }
    if times.len() >= limit {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many token requests",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(5u64));
        return r;
    }
    times.push_back(now);
    let nonce = format!(
        "{:016x}{:016x}",
        (s.random() * 1e18) as u64,
        s.tokens_issued
    );
    let ttl = s.config.token_ttl_secs;
    // Admin tokens are JWTs naming the tenant (discovery reads the claim); v2 tokens are opaque.
    let token = match s.config.dialect {
        SimDialect::V2 => format!("tok{nonce}"),
        SimDialect::Admin => admin::jwt(&s.config.tenant_id, &nonce),
    };
    let expires = s.now() + chrono::Duration::seconds(ttl as i64);
    s.tokens.insert(token.clone(), (client, expires));
    s.tokens_issued += 1;
    let mut body = json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    Json(body).into_response()
}

pub(crate) fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let v = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (i, s) = text.split_once(':')?;
    Some((i.to_string(), s.to_string()))
}
