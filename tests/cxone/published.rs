//! The simulator answers in the shapes NICE publishes, never in ours: every Admin API endpoint of `cxone-sim` is
//! walked and the structure of its answer (keys, nesting, JSON types) compared with the published sample of that
//! call (`docs/cxone-admin/samples/`, which the client's own tests decode). A key the sample does not have, a
//! missing key that is not optional, or a value of another type fails, naming the call and the path.

use std::path::PathBuf;

use cxone_sim::{SimConfig, SimDialect};
use serde_json::{json, Value};

fn sample(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/cxone-admin/samples")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Where `actual` departs from the structure of `published`: keys neither more nor fewer (except `optional` ones,
/// which may be absent), objects and arrays nested alike, scalars of the same JSON type. `null` on either side is
/// taken as "any type" (published fields such as `expiredDate` and `removeDate` are nullable).
fn departures(published: &Value, actual: &Value, path: &str, optional: &[&str]) -> Vec<String> {
    match (published, actual) {
        (Value::Null, _) | (_, Value::Null) => Vec::new(),
        (Value::Object(p), Value::Object(a)) => {
            let mut out = Vec::new();
            for k in a.keys() {
                if !p.contains_key(k) {
                    out.push(format!("{path}.{k}: not in the published shape"));
                }
            }
            for (k, pv) in p {
                match a.get(k) {
                    Some(av) => out.extend(departures(pv, av, &format!("{path}.{k}"), optional)),
                    None if optional.contains(&k.as_str()) => {}
                    None => out.push(format!("{path}.{k}: missing")),
                }
            }
            out
        }
        (Value::Array(p), Value::Array(a)) => match p.first() {
            // An empty published array says nothing of its items.
            None => Vec::new(),
            Some(item) => a
                .iter()
                .enumerate()
                .flat_map(|(i, av)| departures(item, av, &format!("{path}[{i}]"), optional))
                .collect(),
        },
        (p, a) if std::mem::discriminant(p) == std::mem::discriminant(a) => Vec::new(),
        (p, a) => vec![format!(
            "{path}: {} where the published shape has {}",
            kind(a),
            kind(p)
        )],
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[test]
fn the_comparison_sees_a_departure() {
    let published = json!({"resultSet": {"totalGroups": 1, "dncGroups": [{"dncGroupId": 1, "isActive": true}]}});
    let ours = json!({"totalRecords": 1, "dncGroups": [{"dncGroupId": "1", "isActive": true}]});
    let d = departures(&published, &ours, "GET /dnc-groups", &[]);
    assert!(
        d.iter()
            .any(|x| x.contains(".totalRecords: not in the published shape")),
        "{d:?}"
    );
    assert!(d.iter().any(|x| x.contains(".resultSet: missing")), "{d:?}");
    let typed = json!({"resultSet": {"totalGroups": 1, "dncGroups": [{"dncGroupId": "1", "isActive": true}]}});
    let d = departures(&published, &typed, "x", &[]);
    assert_eq!(
        d,
        ["x.resultSet.dncGroups[0].dncGroupId: a string where the published shape has a number"]
    );
}

struct Tenant {
    http: reqwest::Client,
    api: String,
    token: String,
}

impl Tenant {
    /// The password grant and discovery, as a real tenant is reached.
    async fn connect(sim: &cxone_sim::RunningSim) -> Tenant {
        let config = SimConfig::default();
        let (client, secret) = config.clients[0].clone();
        let (key, key_secret) = config.access_keys[0].clone();
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!("{}/auth/token", sim.base_url))
            .basic_auth(client, Some(secret))
            .form(&[
                ("grant_type", "password"),
                ("username", &key),
                ("password", &key_secret),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let discovery: Value = http
            .get(format!("{}/.well-known/cxone-configuration", sim.base_url))
            .query(&[("tenantId", config.tenant_id.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Tenant {
            http,
            api: format!(
                "{}/inContactAPI/services/v33.0",
                discovery["api_endpoint"].as_str().unwrap()
            ),
            token: token["access_token"].as_str().unwrap().to_string(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.api))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let response = req.send().await.unwrap();
        let status = response.status();
        assert!(status.is_success(), "{method} {path}: {status}");
        let bytes = response.bytes().await.unwrap();
        if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        }
    }
}

/// Every admin endpoint of the simulator, against its published sample.
#[tokio::test]
async fn the_simulator_answers_every_admin_call_in_the_published_shape() {
    use reqwest::Method;
    let sim = cxone_sim::spawn(
        SimConfig {
            dialect: SimDialect::Admin,
            calling_list_records: 300,
            propagation_secs: (0, 0),
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let t = Tenant::connect(&sim).await;
    let mut departed = Vec::new();
    let mut check = |call: &str, file: &str, answer: &Value, optional: &[&str]| {
        departed.extend(departures(&sample(file), answer, call, optional));
    };

    let created = t
        .call(
            Method::POST,
            "/dnc-groups",
            Some(json!({"dncGroupName": "Opt_Outs", "dncGroupDescription": "customers"})),
        )
        .await;
    check("POST /dnc-groups", "post-dnc-groups.json", &created, &[]);
    let id = created["dncGroups"][0]["dncGroupId"]
        .as_u64()
        .expect("a numeric group id");
    let put = t
        .call(
            Method::PUT,
            &format!("/dnc-groups/{id}?isActive=true"),
            None,
        )
        .await;
    check("PUT /dnc-groups/{id}", "post-dnc-groups.json", &put, &[]);
    let skills = t.call(Method::GET, "/skills", None).await;
    let skill = skills["skills"][0]["skillId"].as_u64().unwrap();
    t.call(
        Method::POST,
        &format!("/dnc-groups/{id}/scrubbed-skills/{skill}"),
        None,
    )
    .await;
    let added = t
        .call(
            Method::POST,
            &format!("/dnc-groups/{id}/records"),
            Some(json!({"dncGroupRecords": [
                {"phoneNumber": 2025550198u64, "expiredDate": "2027-12-31T23:59:59.000Z"},
                {"phoneNumber": "3125550142"},
                {"phoneNumber": "44207946000"}
            ]})),
        )
        .await;
    check(
        "POST /dnc-groups/{id}/records",
        "post-dnc-group-records.json",
        &added,
        &[],
    );
    assert_eq!(added["resultSet"]["errorCount"], 1, "{added}");

    let groups = t.call(Method::GET, "/dnc-groups", None).await;
    check("GET /dnc-groups", "get-dnc-groups.json", &groups, &[]);
    let group = t
        .call(Method::GET, &format!("/dnc-groups/{id}"), None)
        .await;
    check(
        "GET /dnc-groups/{id}",
        "get-dnc-group-by-id.json",
        &group,
        &[],
    );
    let records = t
        .call(
            Method::GET,
            &format!("/dnc-groups/{id}/records?skip=0&top=10"),
            None,
        )
        .await;
    check(
        "GET /dnc-groups/{id}/records",
        "get-dnc-group-records.json",
        &records,
        &[],
    );
    assert_eq!(records["resultSet"]["totalRecords"], 2, "{records}");
    // A record written without an expiration never expires: `expiredDate` null, as published.
    assert!(
        records["resultSet"]["dncRecords"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["expiredDate"].is_null()),
        "{records}"
    );
    let scrubbed = t
        .call(
            Method::GET,
            &format!("/dnc-groups/{id}/scrubbed-skills"),
            None,
        )
        .await;
    check(
        "GET /dnc-groups/{id}/scrubbed-skills",
        "get-dnc-group-scrubbed-skills.json",
        &scrubbed,
        &["totalRecords", "_links"],
    );
    let contributing = t
        .call(
            Method::GET,
            &format!("/dnc-groups/{id}/contributing-skills"),
            None,
        )
        .await;
    check(
        "GET /dnc-groups/{id}/contributing-skills",
        "get-dnc-group-contributing-skills.json",
        &contributing,
        &["totalRecords", "_links"],
    );
    let found = t
        .call(
            Method::POST,
            "/dnc-groups/search?phoneNumber=2025550198",
            None,
        )
        .await;
    check(
        "POST /dnc-groups/search",
        "post-dnc-groups-search.json",
        &found,
        &[],
    );
    assert_eq!(found["searchResults"][0]["dncGroupId"], id, "{found}");
    let calling = t.call(Method::GET, "/lists/call-lists", None).await;
    check(
        "GET /lists/call-lists",
        "get-call-lists.json",
        &calling,
        &["totalRecords", "_links"],
    );
    let deleted = t
        .call(
            Method::DELETE,
            &format!("/dnc-groups/{id}/records"),
            Some(json!({"dncGroupRecords": [{"phoneNumber": "2025550198"}]})),
        )
        .await;
    check(
        "DELETE /dnc-groups/{id}/records",
        "delete-dnc-group-records.json",
        &deleted,
        &[],
    );

    assert!(departed.is_empty(), "{departed:#?}");
    // Linking a scrubbed skill is POST, as published; the verb dncflow used to guess is not served.
    let put_link = t
        .http
        .put(format!("{}/dnc-groups/{id}/scrubbed-skills/{skill}", t.api))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(put_link.status().as_u16(), 405);
}

fn v2_sample(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/cxone-v2/samples")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The v2 dialect the same way, against the shapes of `docs/cxone-api.md` ("Dialect v2").
#[tokio::test]
async fn the_simulator_answers_every_v2_call_in_the_documented_shape() {
    use reqwest::Method;
    let sim = cxone_sim::spawn(
        SimConfig {
            propagation_secs: (0, 0),
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let (client, secret) = SimConfig::default().clients[0].clone();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/oauth/token", sim.base_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.as_str()),
            ("client_secret", secret.as_str()),
            ("scope", "dnc:read dnc:write tenant:read"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut departed = departures(
        &v2_sample("post-oauth-token.json"),
        &token,
        "POST /oauth/token",
        &[],
    );
    let t = Tenant {
        http,
        api: format!("{}/api/v2/dnc", sim.base_url),
        token: token["access_token"].as_str().unwrap().to_string(),
    };
    let mut check = |call: &str, file: &str, answer: &Value| {
        departed.extend(departures(&v2_sample(file), answer, call, &[]));
    };
    let list = t
        .call(
            Method::POST,
            "/lists",
            Some(
                json!({"name": "TCPA_National", "description": "d", "type": "MANUAL",
                "defaultExpirationDate": "2099-12-31T23:59:59Z", "isActive": true}),
            ),
        )
        .await;
    check("POST /lists", "list.json", &list);
    let id = list["id"].as_str().unwrap().to_string();
    check(
        "GET /lists",
        "get-lists.json",
        &t.call(Method::GET, "/lists", None).await,
    );
    check(
        "GET /lists/{id}",
        "list.json",
        &t.call(Method::GET, &format!("/lists/{id}"), None).await,
    );
    let rule = t
        .call(
            Method::POST,
            "/rules",
            Some(
                json!({"name": "R", "description": "d", "scope": "BOTH", "priority": 1,
                "listIds": [id], "action": "BLOCK", "isActive": true}),
            ),
        )
        .await;
    check("POST /rules", "rule.json", &rule);
    let rule_id = rule["id"].as_str().unwrap().to_string();
    check(
        "PUT /rules/{id}",
        "rule.json",
        &t.call(
            Method::PUT,
            &format!("/rules/{rule_id}"),
            Some(
                json!({"name": "R", "description": "d", "scope": "OUTBOUND", "priority": 1,
                "listIds": [id], "action": "BLOCK", "isActive": true}),
            ),
        )
        .await,
    );
    check(
        "GET /rules",
        "get-rules.json",
        &t.call(Method::GET, "/rules", None).await,
    );
    let entry = |n: &str, key: &str| {
        json!({"phoneNumber": n, "listId": id, "jurisdiction": "US-DC",
            "expirationDate": "2031-01-01T00:00:00Z", "source": "s", "idempotencyKey": key})
    };
    check(
        "POST /entries (created)",
        "post-entries-created.json",
        &t.call(
            Method::POST,
            "/entries",
            Some(json!({"data": [entry("+12025550198", "k1")]})),
        )
        .await,
    );
    check(
        "POST /entries (partial)",
        "post-entries-partial.json",
        &t.call(
            Method::POST,
            "/entries",
            Some(json!({"data": [entry("+12025550199", "k2"), entry("2025550100", "k3")]})),
        )
        .await,
    );
    check(
        "GET /entries",
        "get-entries.json",
        &t.call(
            Method::GET,
            &format!("/entries?listId={id}&limit=10&offset=0"),
            None,
        )
        .await,
    );
    check(
        "POST /contacts/batch",
        "post-contacts-batch.json",
        &t.call(
            Method::POST,
            "/contacts/batch",
            Some(
                json!({"contacts": [{"phoneNumber": "+12025550198", "regionCode": "US",
                "listIds": [], "matchType": "exact"}]}),
            ),
        )
        .await,
    );
    assert!(departed.is_empty(), "{departed:#?}");
}
