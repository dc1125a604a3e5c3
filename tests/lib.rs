//! Support shared by the integration tests: local stand-ins for AWS services.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto_server process, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`: the endpoint to give the AWS SDK clients.
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start moto_server on a free loopback port and wait until it answers.
pub fn start_moto() -> Moto {
    start_moto_with(&[])
}

/// The same, with environment variables for moto (`INITIAL_NO_AUTH_ACTION_COUNT` turns IAM enforcement on).
pub fn start_moto_with(env: &[(&str, &str)]) -> Moto {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server not found: scripts/test.sh installs it (pip install 'moto[server]')");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto { child, url }
}

/// A v2 client for the simulator's default OAuth client, at `rate` requests/s, with short backoffs for tests.
pub fn sim_client(
    sim: &cxone_sim::RunningSim,
    rate: f64,
) -> dncflow::adapters::cxone::v2::V2Client {
    use dncflow::adapters::cxone::auth::{Credentials, StaticCredentials};
    let (id, secret) = cxone_sim::SimConfig::default().clients[0].clone();
    let creds = Credentials::v2(&sim.base_url, &id, &secret);
    let config = dncflow::adapters::cxone::v2::ClientConfig {
        rate_per_sec: rate,
        base_backoff: Duration::from_millis(5),
        ..Default::default()
    };
    dncflow::adapters::cxone::v2::V2Client::new(Box::new(StaticCredentials(creds)), config)
        .expect("client")
}

/// A client of the dialect the simulator serves (v2: client credentials; admin: password grant and discovery),
/// built the way the Lambdas and `dncctl` build theirs ([`dncflow::adapters::cxone::connect`]).
pub async fn sim_api(
    sim: &cxone_sim::RunningSim,
    rate: f64,
) -> Box<dyn dncflow::adapters::cxone::DncApi> {
    use dncflow::adapters::cxone::auth::{Credentials, StaticCredentials};
    let creds =
        Credentials::from_json(&sim.credentials_document(), "simulator").expect("credentials");
    let config = dncflow::adapters::cxone::v2::ClientConfig {
        rate_per_sec: rate,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(100),
        ..Default::default()
    };
    dncflow::adapters::cxone::connect(Box::new(StaticCredentials(creds)), config)
        .await
        .expect("client")
}

/// Run a test body once per CXone dialect: `both_dialects!(name)` makes `name::v2` and `name::admin` of
/// `async fn name(dialect: cxone_sim::SimDialect)`.
#[macro_export]
macro_rules! both_dialects {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn v2() {
                super::$name(cxone_sim::SimDialect::V2).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn admin() {
                super::$name(cxone_sim::SimDialect::Admin).await
            }
        }
    };
}

/// An S3 client for moto at `url` (path-style, static test credentials).
pub fn s3_client(url: &str) -> aws_sdk_s3::Client {
    s3_client_as(url, "test", "test")
}

/// An S3 client for moto at `url` signing with the given access key (an IAM user of an IAM-enforcing moto).
pub fn s3_client_as(url: &str, access_key_id: &str, secret_access_key: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "static",
        ))
        .endpoint_url(url)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A Secrets Manager client for moto at `url` (static test credentials).
pub fn secrets_client(url: &str) -> aws_sdk_secretsmanager::Client {
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(url)
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// A Step Functions client for moto at `url` (static test credentials).
pub fn sfn_client(url: &str) -> aws_sdk_sfn::Client {
    sfn_client_as(url, "test", "test")
}

/// A Step Functions client for moto at `url` signing with the given access key.
pub fn sfn_client_as(
    url: &str,
    access_key_id: &str,
    secret_access_key: &str,
) -> aws_sdk_sfn::Client {
    use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "static",
        ))
        .endpoint_url(url)
        .build();
    aws_sdk_sfn::Client::from_conf(config)
}

/// A state machine on moto named `name` (a one-state definition: moto does not run it unless told to, so its
/// executions stay RUNNING until stopped), as the stack's would be; its ARN.
pub async fn create_state_machine(sfn: &aws_sdk_sfn::Client, name: &str) -> String {
    sfn.create_state_machine()
        .name(name)
        .definition(r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}"#)
        .role_arn("arn:aws:iam::123456789012:role/dncflow-state-machine")
        .send()
        .await
        .expect("create_state_machine")
        .state_machine_arn
}

/// A binary of the workspace (`dncctl`, a function's bootstrap), where cargo built it: `$CARGO_TARGET_DIR` when set,
/// else the workspace's `target/`; `DNCFLOW_E2E_PROFILE=release` for the release build (the cold-start benchmark).
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let profile = std::env::var("DNCFLOW_E2E_PROFILE").unwrap_or_else(|_| "debug".into());
    let path = target.join(profile).join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --workspace --bins; scripts/test.sh does)",
        path.display()
    );
    path
}
