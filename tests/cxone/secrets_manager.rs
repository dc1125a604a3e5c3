//! Credentials from AWS Secrets Manager (moto_server on loopback stands in for AWS), and a secret rotation picked up
//! on `invalid_client`.

use cxone_sim::SimConfig;
use dncflow::adapters::cxone::auth::SecretsManagerCredentials;
use dncflow::adapters::cxone::v2::{ClientConfig, V2Client};
use dncflow::adapters::cxone::DncApi;
use dncflow_tests::{secrets_client, start_moto};

#[tokio::test]
async fn credentials_come_from_secrets_manager_and_rotation_is_picked_up() {
    let moto = start_moto();
    let sim = cxone_sim::spawn(
        SimConfig {
            clients: vec![("sm-client".into(), "first-secret".into())],
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let sm = secrets_client(&moto.url);
    let doc = |secret: &str| {
        format!(
            r#"{{"baseUrl":"{}","clientId":"sm-client","clientSecret":"{secret}"}}"#,
            sim.base_url
        )
    };
    sm.create_secret()
        .name("dncflow/cxone")
        .secret_string(doc("first-secret"))
        .send()
        .await
        .unwrap();

    let client = V2Client::new(
        Box::new(SecretsManagerCredentials::new(
            secrets_client(&moto.url),
            "dncflow/cxone",
        )),
        ClientConfig::default(),
    )
    .unwrap();
    client.lists().await.unwrap();
    assert_eq!(client.token_requests(), 1);

    // Rotation: CXone and the secret change, the cached token dies.
    sim.sim
        .set_clients(vec![("sm-client".into(), "second-secret".into())]);
    sm.put_secret_value()
        .secret_id("dncflow/cxone")
        .secret_string(doc("second-secret"))
        .send()
        .await
        .unwrap();
    sim.sim.expire_tokens();
    client
        .lists()
        .await
        .expect("the rotated secret is read again after invalid_client");
    assert_eq!(
        client.token_requests(),
        3,
        "refresh with the old secret, then one with the new"
    );

    // A secret that does not exist is a clear credentials error.
    let missing = V2Client::new(
        Box::new(SecretsManagerCredentials::new(
            secrets_client(&moto.url),
            "nope",
        )),
        ClientConfig::default(),
    )
    .unwrap();
    let err = missing.lists().await.unwrap_err().to_string();
    assert!(
        err.contains("credentials unavailable") && err.contains("nope"),
        "{err}"
    );
}
