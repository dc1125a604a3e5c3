//! Each function's settings as a typed struct, read once per container from an [`Env`]: the process environment in
//! a function, pairs a test gives. A setting left unset takes its documented default; a value that does not parse is
//! a `Fatal` error naming the setting and the value, never the default: a typo in a compliance setting must stop the
//! function loudly (the run is recorded FAILED with the reason; a check answers `error`), not run it with a value
//! nobody chose.
//!
//! What the functions share: `DNCFLOW_BUCKET`, `DNCFLOW_EVIDENCE_LOCK_MODE` and `DNCFLOW_EVIDENCE_LOCK_DAYS` (the S3
//! Object Lock on evidence), `DNCFLOW_BUSINESS_TIME_ZONE` (checked by the functions that count business days), and
//! for those that call CXone ([`Cxone`]): `DNCFLOW_SECRET_ID`, `DNCFLOW_CXONE_URL`, `DNCFLOW_TENANT_RATE` (50
//! requests/s), `DNCFLOW_UPLOAD_WORKERS` (4: each upload worker gets its share of the tenant's rate),
//! `DNCFLOW_CXONE_DEADLINE_SECS`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use dncflow::adapters::cxone::auth::{SecretsManagerCredentials, WithBaseUrl};
use dncflow::adapters::cxone::v2::ClientConfig;
use dncflow::adapters::cxone::DncApi;
use dncflow::adapters::store::{
    EvidenceLock, EVIDENCE_LOCK_DAYS_SETTING, EVIDENCE_LOCK_MODE_SETTING,
};
use dncflow::hours::business_days::{BusinessCalendar, TIME_ZONE_SETTING};
use dncflow::steps::check::Webhook;
use dncflow::steps::ftc_download::DownloadSettings;
use dncflow::steps::{CooldownSettings, ErrorKind, StepError};

/// The environment a container's settings are read from.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Each variable's value; `None`: set, but not UTF-8.
    vars: BTreeMap<String, Option<String>>,
}

impl Env {
    /// The process environment (a function's, once per container).
    pub fn process() -> Env {
        Env::from_os(std::env::vars_os())
    }

    /// Variables as the operating system gives them: a value that is not UTF-8 is kept as such, and reading it is
    /// an error naming it.
    pub fn from_os(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Env {
        Env {
            vars: vars
                .into_iter()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok())))
                .collect(),
        }
    }

    /// These variables and no other (a test's environment).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect(),
        }
    }

    /// The value of `name`, `None` when unset.
    pub fn get(&self, name: &str) -> Result<Option<&str>, StepError> {
        match self.vars.get(name) {
            None => Ok(None),
            Some(Some(v)) => Ok(Some(v)),
            Some(None) => Err(StepError::new(
                ErrorKind::Fatal,
                format!("setting {name} is not UTF-8"),
            )),
        }
    }

    /// The value of `name`, `None` when unset or blank (a template parameter left empty).
    pub fn text(&self, name: &str) -> Result<Option<String>, StepError> {
        Ok(self
            .get(name)?
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string))
    }

    /// The value of `name`, which must be set.
    pub fn required(&self, name: &str) -> Result<String, StepError> {
        self.text(name)?
            .ok_or_else(|| StepError::new(ErrorKind::Fatal, format!("{name} is not set")))
    }

    /// A comma-separated list of names (blank entries dropped).
    pub fn names(&self, name: &str) -> Result<Vec<String>, StepError> {
        Ok(self
            .get(name)?
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect())
    }

    /// The setting `name` parsed, `default` when unset. A value that does not parse is an error naming the setting
    /// and the value.
    pub fn setting<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, StepError> {
        match self.get(name)? {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                StepError::new(
                    ErrorKind::Fatal,
                    format!(
                        "setting {name} is not a valid {}: {v:?}",
                        std::any::type_name::<T>()
                    ),
                )
            }),
        }
    }

    /// Seconds as a duration (see [`Env::setting`]); negative or non-finite values are errors too.
    pub fn secs(&self, name: &str, default: Duration) -> Result<Duration, StepError> {
        let secs: f64 = self.setting(name, default.as_secs_f64())?;
        Duration::try_from_secs_f64(secs).map_err(|_| {
            StepError::new(
                ErrorKind::Fatal,
                format!("setting {name} is not a number of seconds: {secs}"),
            )
        })
    }

    /// The deployment's S3 Object Lock on evidence (`DNCFLOW_EVIDENCE_LOCK_MODE`, `DNCFLOW_EVIDENCE_LOCK_DAYS`).
    pub fn evidence_lock(&self) -> Result<Option<EvidenceLock>, StepError> {
        EvidenceLock::parse(
            self.get(EVIDENCE_LOCK_MODE_SETTING)?.unwrap_or_default(),
            self.get(EVIDENCE_LOCK_DAYS_SETTING)?.unwrap_or_default(),
        )
        .map_err(|e| StepError::new(ErrorKind::Fatal, e))
    }

    /// The business-day calendar (`DNCFLOW_BUSINESS_TIME_ZONE`, default `America/New_York`): a zone that does not
    /// exist fails the function before it measures any deadline.
    pub fn business_calendar(&self) -> Result<&'static BusinessCalendar, StepError> {
        match self.text(TIME_ZONE_SETTING)? {
            Some(zone) => BusinessCalendar::for_zone(&zone)
                .map_err(|e| StepError::new(ErrorKind::Fatal, e.to_string())),
            None => Ok(BusinessCalendar::federal()),
        }
    }

    /// The EventBridge bus the function publishes to (`DNCFLOW_EVENT_BUS`, default `default`).
    fn event_bus(&self) -> Result<String, StepError> {
        Ok(self
            .text("DNCFLOW_EVENT_BUS")?
            .unwrap_or_else(|| "default".into()))
    }
}

/// How a function reaches CXone. The client is built from these (and the secret read) when the container starts, or
/// at the first check that needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cxone {
    /// `DNCFLOW_SECRET_ID`: the Secrets Manager secret (name or ARN) holding `{"baseUrl","clientId","clientSecret"}`;
    /// unset, connecting fails `Fatal`.
    pub secret_id: Option<String>,
    /// `DNCFLOW_CXONE_URL`: overrides the secret's `baseUrl` (a test tenant, the simulator).
    pub base_url: Option<String>,
    /// Requests per second this container may send.
    pub rate_per_sec: f64,
    /// `DNCFLOW_CXONE_DEADLINE_SECS`: the most one request may take, its retries included.
    pub deadline: Duration,
}

impl Cxone {
    /// CXone at `rate_per_sec`, each request bounded by `DNCFLOW_CXONE_DEADLINE_SECS`, `deadline` by default.
    pub fn read(env: &Env, rate_per_sec: f64, deadline: Duration) -> Result<Cxone, StepError> {
        Ok(Cxone {
            secret_id: env.text("DNCFLOW_SECRET_ID")?,
            base_url: env.text("DNCFLOW_CXONE_URL")?,
            rate_per_sec,
            deadline: env.secs("DNCFLOW_CXONE_DEADLINE_SECS", deadline)?,
        })
    }

    /// The tenant's whole rate (`DNCFLOW_TENANT_RATE`, 50 requests/s).
    pub fn tenant_rate(env: &Env) -> Result<f64, StepError> {
        env.setting("DNCFLOW_TENANT_RATE", 50.0)
    }

    /// The tenant's rate divided among the upload workers (`DNCFLOW_UPLOAD_WORKERS`, 4: the Map's `MaxConcurrency`).
    pub fn worker_rate(env: &Env) -> Result<f64, StepError> {
        let workers: f64 = env.setting("DNCFLOW_UPLOAD_WORKERS", 4.0)?;
        Ok((Cxone::tenant_rate(env)? / workers.max(1.0)).max(0.1))
    }

    /// The CXone client, for the dialect the secret names. The secret is read here, and again when CXone answers
    /// `invalid_client` (rotation).
    pub async fn connect(&self) -> Result<Box<dyn DncApi>, StepError> {
        let secret_id = self
            .secret_id
            .clone()
            .ok_or_else(|| StepError::new(ErrorKind::Fatal, "DNCFLOW_SECRET_ID is not set"))?;
        let source = WithBaseUrl {
            inner: SecretsManagerCredentials::from_env(secret_id, None).await,
            base_url: self.base_url.clone(),
        };
        let defaults = ClientConfig::default();
        let config = ClientConfig {
            rate_per_sec: self.rate_per_sec,
            deadline: self.deadline,
            request_timeout: defaults.request_timeout.min(self.deadline),
            ..defaults
        };
        dncflow::adapters::cxone::connect(Box::new(source), config)
            .await
            .map_err(StepError::from)
    }
}

/// `normalize`'s settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    /// The lock on evidence.
    pub evidence_lock: Option<EvidenceLock>,
    /// `DNCFLOW_BUCKET`: where runs are written; unset, the bucket the file was dropped in.
    pub out_bucket: Option<String>,
    /// `DNCFLOW_DEFAULT_REGION` (`US`): the region of numbers written without a country code.
    pub region: dncflow::phone::DefaultRegion,
    /// `DNCFLOW_SHARDS` (16).
    pub shards: u32,
    /// `DNCFLOW_MAX_INFLATED_BYTES` (8 GiB), `DNCFLOW_MAX_INFLATION_RATIO` (200), `DNCFLOW_MAX_ZIP_MEMBERS` (10,000).
    pub limits: dncflow::input::decode::DecodeLimits,
    /// `DNCFLOW_MAX_REJECTS_KEPT` (100,000 rejects written in full; past it each reason keeps 100 samples and the
    /// rest are counted).
    pub max_rejects_kept: u64,
    /// `DNCFLOW_MAX_REJECT_RATIO` (0.5: a file rejecting more of its rows, or accepting none, fails `InvalidInput`
    /// before anything is uploaded).
    pub max_reject_ratio: f64,
}

impl Normalize {
    /// From `env`. The first step of a run: a business-day zone that does not exist fails the run here, named,
    /// before any receipt is recorded.
    pub fn read(env: &Env) -> Result<Normalize, StepError> {
        env.business_calendar()?;
        let defaults = dncflow::input::decode::DecodeLimits::default();
        Ok(Normalize {
            evidence_lock: env.evidence_lock()?,
            out_bucket: env.text("DNCFLOW_BUCKET")?,
            region: match env.text("DNCFLOW_DEFAULT_REGION")? {
                Some(code) => dncflow::phone::DefaultRegion::from_code(&code).ok_or_else(|| {
                    StepError::new(
                        ErrorKind::Fatal,
                        format!(
                            "setting DNCFLOW_DEFAULT_REGION is not a region we normalize: {code:?}"
                        ),
                    )
                })?,
                None => dncflow::phone::DefaultRegion::default(),
            },
            shards: env.setting("DNCFLOW_SHARDS", 16)?,
            limits: dncflow::input::decode::DecodeLimits {
                max_inflated_bytes: env
                    .setting("DNCFLOW_MAX_INFLATED_BYTES", defaults.max_inflated_bytes)?,
                max_ratio: env.setting("DNCFLOW_MAX_INFLATION_RATIO", defaults.max_ratio)?,
                max_members: env.setting("DNCFLOW_MAX_ZIP_MEMBERS", defaults.max_members)?,
            },
            max_rejects_kept: env.setting("DNCFLOW_MAX_REJECTS_KEPT", 100_000)?,
            max_reject_ratio: env.setting(
                "DNCFLOW_MAX_REJECT_RATIO",
                dncflow::steps::normalize::DEFAULT_MAX_REJECT_RATIO,
            )?,
        })
    }
}

/// `lease`'s settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The lock on evidence.
    pub evidence_lock: Option<EvidenceLock>,
    /// `DNCFLOW_LEASE_WAIT_SECS` (30): how long a waiting execution sleeps between attempts.
    pub wait_secs: u64,
}

impl Lease {
    /// From `env`.
    pub fn read(env: &Env) -> Result<Lease, StepError> {
        Ok(Lease {
            evidence_lock: env.evidence_lock()?,
            wait_secs: env.setting("DNCFLOW_LEASE_WAIT_SECS", dncflow::steps::LEASE_WAIT_SECS)?,
        })
    }
}

/// `upload`'s settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    /// The lock on evidence.
    pub evidence_lock: Option<EvidenceLock>,
    /// CXone, at this worker's share of the tenant's rate.
    pub cxone: Cxone,
    /// `DNCFLOW_UPLOAD_MARGIN_SECS` (150: one request's retry deadline plus the ledger write): time kept back from
    /// the invocation's deadline.
    pub margin: Duration,
    /// `DNCFLOW_UPLOAD_CONCURRENCY` (2): batches in flight.
    pub concurrency: usize,
    /// `DNCFLOW_CXONE_CAPACITY` (1,000,000): a run that would bring the environment above it fails
    /// `CapacityExceeded` before its first write.
    pub capacity: u64,
}

impl Upload {
    /// From `env`.
    pub fn read(env: &Env) -> Result<Upload, StepError> {
        Ok(Upload {
            evidence_lock: env.evidence_lock()?,
            cxone: Cxone::read(
                env,
                Cxone::worker_rate(env)?,
                ClientConfig::default().deadline,
            )?,
            margin: env.secs("DNCFLOW_UPLOAD_MARGIN_SECS", Duration::from_secs(150))?,
            concurrency: env.setting("DNCFLOW_UPLOAD_CONCURRENCY", 2)?,
            capacity: env.setting("DNCFLOW_CXONE_CAPACITY", dncflow::steps::CXONE_CAPACITY)?,
        })
    }
}

/// `cooldown`'s settings.
#[derive(Debug, Clone)]
pub struct Cooldown {
    /// The lock on evidence.
    pub evidence_lock: Option<EvidenceLock>,
    /// CXone, at the tenant's rate.
    pub cxone: Cxone,
    /// `DNCFLOW_COOLDOWN_SECS` (180: the minimum after the last write), `DNCFLOW_CANARY_SIZE` (20),
    /// `DNCFLOW_CANARY_INTERVAL_SECS` (30), `DNCFLOW_COOLDOWN_ATTEMPTS` (20), `DNCFLOW_CANARY_SETTLE_SECS` (300: from
    /// then on a partly suppressed canary is handed to reconciliation).
    pub stage: CooldownSettings,
}

impl Cooldown {
    /// From `env`.
    pub fn read(env: &Env) -> Result<Cooldown, StepError> {
        let defaults = CooldownSettings::default();
        Ok(Cooldown {
            evidence_lock: env.evidence_lock()?,
            cxone: Cxone::read(
                env,
                Cxone::tenant_rate(env)?,
                ClientConfig::default().deadline,
            )?,
            stage: CooldownSettings {
                min: env.secs("DNCFLOW_COOLDOWN_SECS", defaults.min)?,
                canary_size: env.setting("DNCFLOW_CANARY_SIZE", defaults.canary_size)?,
                canary_interval: env
                    .secs("DNCFLOW_CANARY_INTERVAL_SECS", defaults.canary_interval)?,
                max_attempts: env.setting("DNCFLOW_COOLDOWN_ATTEMPTS", defaults.max_attempts)?,
                settle: env.secs("DNCFLOW_CANARY_SETTLE_SECS", defaults.settle)?,
            },
        })
    }
}

/// `reconcile`'s settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconcile {
    /// The lock on evidence.
    pub evidence_lock: Option<EvidenceLock>,
    /// CXone, at the tenant's rate.
    pub cxone: Cxone,
    /// `DNCFLOW_EVENT_BUS` (`default`): where SUCCESS and FAILED are published.
    pub event_bus: String,
    /// `DNCFLOW_RECONCILE_ROUNDS` (3).
    pub rounds: u32,
}

impl Reconcile {
    /// From `env`; the business-day zone is checked (the deadline is counted in its days).
    pub fn read(env: &Env) -> Result<Reconcile, StepError> {
        env.business_calendar()?;
        Ok(Reconcile {
            evidence_lock: env.evidence_lock()?,
            cxone: Cxone::read(
                env,
                Cxone::tenant_rate(env)?,
                ClientConfig::default().deadline,
            )?,
            event_bus: env.event_bus()?,
            rounds: env.setting("DNCFLOW_RECONCILE_ROUNDS", 3)?,
        })
    }
}

/// `record-failure`'s settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFailure {
    /// The lock on evidence.
    pub evidence_lock: Option<EvidenceLock>,
    /// `DNCFLOW_BUCKET` (required).
    pub bucket: String,
    /// `DNCFLOW_EVENT_BUS` (`default`).
    pub event_bus: String,
}

impl RecordFailure {
    /// From `env`.
    pub fn read(env: &Env) -> Result<RecordFailure, StepError> {
        Ok(RecordFailure {
            evidence_lock: env.evidence_lock()?,
            bucket: env.required("DNCFLOW_BUCKET")?,
            event_bus: env.event_bus()?,
        })
    }
}

/// `registry`'s settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    /// The lock on evidence.
    pub evidence_lock: Option<EvidenceLock>,
    /// `DNCFLOW_BUCKET` (required).
    pub bucket: String,
}

impl Registry {
    /// From `env`.
    pub fn read(env: &Env) -> Result<Registry, StepError> {
        Ok(Registry {
            evidence_lock: env.evidence_lock()?,
            bucket: env.required("DNCFLOW_BUCKET")?,
        })
    }
}

/// `ftc-download`'s settings.
#[derive(Debug, Clone)]
pub struct FtcDownload {
    /// The lock on evidence.
    pub evidence_lock: Option<EvidenceLock>,
    /// `DNCFLOW_BUCKET` (required).
    pub bucket: String,
    /// `DNCFLOW_FTC_SECRET_ID`: the FTC account (`docs/ftc-download.md`), read at the first action that talks to the
    /// FTC; unset, that action fails `Fatal` (and `failed` still records).
    pub secret_id: Option<String>,
    /// `DNCFLOW_FTC_ENDPOINT`: default the secret's `endpoint`, else the FTC's.
    pub endpoint: Option<String>,
    /// `DNCFLOW_FTC_FULL_EVERY_DAYS` (7), `DNCFLOW_FTC_MAX_POLLS` (720: a day of 2-minute polls).
    pub stage: DownloadSettings,
}

impl FtcDownload {
    /// From `env`.
    pub fn read(env: &Env) -> Result<FtcDownload, StepError> {
        let defaults = DownloadSettings::default();
        Ok(FtcDownload {
            evidence_lock: env.evidence_lock()?,
            bucket: env.required("DNCFLOW_BUCKET")?,
            secret_id: env.text("DNCFLOW_FTC_SECRET_ID")?,
            endpoint: env.text("DNCFLOW_FTC_ENDPOINT")?,
            stage: DownloadSettings {
                full_every_days: env
                    .setting("DNCFLOW_FTC_FULL_EVERY_DAYS", defaults.full_every_days)?,
                max_polls: env.setting("DNCFLOW_FTC_MAX_POLLS", defaults.max_polls)?,
            },
        })
    }
}

/// `check`'s settings.
#[derive(Debug, Clone)]
pub struct Check {
    /// The lock on evidence (the audit records).
    pub evidence_lock: Option<EvidenceLock>,
    /// `DNCFLOW_BUCKET` (required).
    pub bucket: String,
    /// `DNCFLOW_CHECK_LISTS`: the lists whose received numbers and snapshots are answered locally.
    pub lists: Vec<String>,
    /// `DNCFLOW_CHECK_REGISTRIES`: the registries whose suppression indexes are consulted.
    pub registries: Vec<String>,
    /// `DNCFLOW_CHECK_REFRESH_SECS` (300): how old the local knowledge may get.
    pub refresh: Duration,
    /// `DNCFLOW_CHECK_CONCURRENCY` (4 CXone calls in flight).
    pub concurrency: usize,
    /// `DNCFLOW_CHECK_MAX_VERIFIED_AGE_SECS` (26 h): how old a list's last verified run may be for the check to
    /// answer from it (dialects without a batch check).
    pub verified_max_age: Duration,
    /// CXone at the tenant's rate, each wait bounded by 20 s by default: well inside the function's 60 s timeout,
    /// what CXone has not answered by then is `error`.
    pub cxone: Cxone,
    /// `DNCFLOW_AUDIT_WEBHOOK_URL` (optional export, after the S3 record), `DNCFLOW_AUDIT_WEBHOOK_BUDGET_SECS` (2).
    pub webhook: Option<Webhook>,
    /// `DNCFLOW_AUDIT_KEY_SECRET_ID`: the secret holding the key audit hashes are keyed with; unset, no check can be
    /// audited (503).
    pub audit_key_secret_id: Option<String>,
}

/// The check's CXone deadline by default: a third of the function's 60 s timeout.
pub const CHECK_CXONE_DEADLINE: Duration = Duration::from_secs(20);

impl Check {
    /// From `env`; the business-day zone is checked (the deadline metrics count in its days).
    pub fn read(env: &Env) -> Result<Check, StepError> {
        env.business_calendar()?;
        Ok(Check {
            evidence_lock: env.evidence_lock()?,
            bucket: env.required("DNCFLOW_BUCKET")?,
            lists: env.names("DNCFLOW_CHECK_LISTS")?,
            registries: env.names("DNCFLOW_CHECK_REGISTRIES")?,
            refresh: env.secs("DNCFLOW_CHECK_REFRESH_SECS", Duration::from_secs(300))?,
            concurrency: env.setting("DNCFLOW_CHECK_CONCURRENCY", 4)?,
            verified_max_age: env.secs(
                "DNCFLOW_CHECK_MAX_VERIFIED_AGE_SECS",
                dncflow::steps::VERIFIED_MAX_AGE,
            )?,
            cxone: Cxone::read(env, Cxone::tenant_rate(env)?, CHECK_CXONE_DEADLINE)?,
            webhook: match env.text("DNCFLOW_AUDIT_WEBHOOK_URL")? {
                Some(url) => Some(Webhook {
                    url,
                    attempts: 3,
                    backoff: Duration::from_millis(200),
                    budget: env.secs(
                        "DNCFLOW_AUDIT_WEBHOOK_BUDGET_SECS",
                        dncflow::steps::check::WEBHOOK_BUDGET,
                    )?,
                }),
                None => None,
            },
            audit_key_secret_id: env.text("DNCFLOW_AUDIT_KEY_SECRET_ID")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_that_does_not_parse_is_an_error_naming_it_never_the_default() {
        let env = Env::from_pairs([
            ("DNCFLOW_SHARDS", "1O"),
            ("DNCFLOW_GOOD", " 12 "),
            ("DNCFLOW_NEGATIVE_SECS", "-5"),
        ]);
        let typo = env.setting("DNCFLOW_SHARDS", 4u32).unwrap_err();
        assert_eq!(typo.kind(), ErrorKind::Fatal);
        assert!(
            typo.to_string().contains("DNCFLOW_SHARDS") && typo.to_string().contains("1O"),
            "{typo}"
        );
        assert_eq!(env.setting("DNCFLOW_GOOD", 4u32).unwrap(), 12);
        assert_eq!(env.setting("DNCFLOW_UNSET", 4u32).unwrap(), 4);
        assert!(env
            .secs("DNCFLOW_NEGATIVE_SECS", Duration::from_secs(1))
            .is_err());
        assert_eq!(
            env.secs("DNCFLOW_UNSET", Duration::from_millis(1500))
                .unwrap(),
            Duration::from_millis(1500)
        );
        // The same typo fails the whole function's settings, naming it.
        let e = Normalize::read(&env).unwrap_err();
        assert!(e.to_string().contains("DNCFLOW_SHARDS"), "{e}");
    }

    #[test]
    fn a_value_that_is_not_utf8_is_an_error_naming_the_setting() {
        use std::os::unix::ffi::OsStringExt;
        let env = Env::from_os([(
            OsString::from("DNCFLOW_BUCKET"),
            OsString::from_vec(b"runs\xff".to_vec()),
        )]);
        let e = Registry::read(&env).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Fatal);
        assert_eq!(e.to_string(), "setting DNCFLOW_BUCKET is not UTF-8");
    }

    #[test]
    fn unset_settings_take_the_documented_defaults() {
        let env = Env::from_pairs([("DNCFLOW_BUCKET", "runs"), ("DNCFLOW_SECRET_ID", "cxone")]);
        let n = Normalize::read(&env).unwrap();
        assert_eq!(
            (n.shards, n.max_rejects_kept, n.max_reject_ratio),
            (16, 100_000, 0.5)
        );
        assert_eq!(n.region, dncflow::phone::DefaultRegion::US);
        assert_eq!(n.out_bucket.as_deref(), Some("runs"));
        assert_eq!(n.evidence_lock, None);
        assert_eq!(Lease::read(&env).unwrap().wait_secs, 30);
        let u = Upload::read(&env).unwrap();
        // The tenant's 50 requests/s shared by the Map's 4 workers.
        assert_eq!(u.cxone.rate_per_sec, 12.5);
        assert_eq!(u.cxone.deadline, Duration::from_secs(120));
        assert_eq!(u.cxone.secret_id.as_deref(), Some("cxone"));
        assert_eq!(
            (u.margin, u.concurrency, u.capacity),
            (Duration::from_secs(150), 2, 1_000_000)
        );
        let c = Cooldown::read(&env).unwrap();
        assert_eq!(c.cxone.rate_per_sec, 50.0);
        assert_eq!(c.stage.min, Duration::from_secs(180));
        let r = Reconcile::read(&env).unwrap();
        assert_eq!((r.event_bus.as_str(), r.rounds), ("default", 3));
        let f = FtcDownload::read(&env).unwrap();
        assert_eq!((f.stage.full_every_days, f.stage.max_polls), (7, 720));
        let check = Check::read(&env).unwrap();
        assert_eq!(check.cxone.deadline, CHECK_CXONE_DEADLINE);
        assert!(check.lists.is_empty() && check.webhook.is_none());
        assert_eq!(check.refresh, Duration::from_secs(300));
    }

    #[test]
    fn each_function_reads_its_own_settings() {
        let env = Env::from_pairs([
            ("DNCFLOW_BUCKET", "runs"),
            ("DNCFLOW_TENANT_RATE", "20"),
            ("DNCFLOW_UPLOAD_WORKERS", "2"),
            ("DNCFLOW_CXONE_DEADLINE_SECS", "7.5"),
            ("DNCFLOW_CXONE_URL", " "),
            ("DNCFLOW_CHECK_LISTS", " optouts, ,litigators,"),
            ("DNCFLOW_CHECK_REGISTRIES", "federal"),
            ("DNCFLOW_AUDIT_WEBHOOK_URL", "https://audit.example/hook"),
            ("DNCFLOW_AUDIT_WEBHOOK_BUDGET_SECS", "0.5"),
            ("DNCFLOW_EVIDENCE_LOCK_MODE", "compliance"),
            ("DNCFLOW_EVIDENCE_LOCK_DAYS", "2557"),
            ("DNCFLOW_DEFAULT_REGION", "ca"),
            ("DNCFLOW_EVENT_BUS", "dnc"),
        ]);
        let u = Upload::read(&env).unwrap();
        assert_eq!(u.cxone.rate_per_sec, 10.0);
        assert_eq!(u.cxone.deadline, Duration::from_millis(7500));
        assert_eq!(u.cxone.base_url, None, "a blank URL is no override");
        assert_eq!(u.evidence_lock.map(|l| l.days), Some(2557));
        let check = Check::read(&env).unwrap();
        assert_eq!(check.lists, ["optouts", "litigators"]);
        assert_eq!(check.registries, ["federal"]);
        assert_eq!(check.cxone.rate_per_sec, 20.0);
        assert_eq!(check.cxone.deadline, Duration::from_millis(7500));
        let hook = check.webhook.expect("a webhook");
        assert_eq!(
            (hook.url.as_str(), hook.budget),
            ("https://audit.example/hook", Duration::from_millis(500))
        );
        assert_eq!(
            Normalize::read(&env).unwrap().region,
            dncflow::phone::DefaultRegion::from_code("CA").unwrap()
        );
        assert_eq!(RecordFailure::read(&env).unwrap().event_bus, "dnc");
    }

    #[test]
    fn a_missing_bucket_a_bad_lock_or_zone_fails_the_function_fatal_naming_it() {
        let fatal = |e: StepError, name: &str| {
            assert_eq!(e.kind(), ErrorKind::Fatal, "{e}");
            assert!(e.to_string().contains(name), "{e}");
        };
        fatal(
            RecordFailure::read(&Env::default()).unwrap_err(),
            "DNCFLOW_BUCKET",
        );
        fatal(
            Check::read(&Env::from_pairs([("DNCFLOW_BUCKET", "")])).unwrap_err(),
            "DNCFLOW_BUCKET",
        );
        let env = Env::from_pairs([
            ("DNCFLOW_BUCKET", "runs"),
            ("DNCFLOW_EVIDENCE_LOCK_MODE", "GOVERNENCE"),
        ]);
        fatal(
            Registry::read(&env).unwrap_err(),
            "DNCFLOW_EVIDENCE_LOCK_MODE",
        );
        let env = Env::from_pairs([
            ("DNCFLOW_BUCKET", "runs"),
            ("DNCFLOW_BUSINESS_TIME_ZONE", "America/New_Yrok"),
        ]);
        fatal(
            Reconcile::read(&env).unwrap_err(),
            "DNCFLOW_BUSINESS_TIME_ZONE",
        );
        fatal(
            Normalize::read(&env).unwrap_err(),
            "DNCFLOW_BUSINESS_TIME_ZONE",
        );
        // Functions that count no business days do not refuse to start over it.
        assert!(Lease::read(&env).is_ok());
        let env = Env::from_pairs([("DNCFLOW_DEFAULT_REGION", "Narnia")]);
        fatal(Normalize::read(&env).unwrap_err(), "DNCFLOW_DEFAULT_REGION");
    }

    #[tokio::test]
    async fn connecting_without_a_secret_is_fatal() {
        let cxone = Cxone::read(&Env::default(), 1.0, Duration::from_secs(1)).unwrap();
        let e = match cxone.connect().await {
            Err(e) => e,
            Ok(_) => panic!("connected without a secret"),
        };
        assert_eq!(e.kind(), ErrorKind::Fatal);
        assert_eq!(e.to_string(), "DNCFLOW_SECRET_ID is not set");
    }
}
