//! The FTC subscription, watched: what the organization bought (its Subscription Account Number, the area codes it
//! pays for, the day the SAN must be renewed), what the download workflow fetched (the last full download of each
//! area code, the last change list) and how it last failed, beside the registry's own freshness and continuity. The
//! figures a person or an alarm acts on are computed here, as plain functions of plain documents:
//!
//! - `subscribedNotCovered`: area codes the SAN pays for that the live version lacks (their numbers are answered
//!   `error`, and calling them would need the registry's data the organization bought but does not hold);
//! - `daysNotContinuous`: days since yesterday (what a nightly change list covers) that no change list covers: 0
//!   when the nightly runs keep up, 2 after two nights without a list (the alarm's threshold);
//! - `daysToStale`: whole days before the 31-day limit (the alarm fires at 7);
//! - `daysToRenewal`: whole days before the SAN's renewal date (the alarm fires at 30; after it, the FTC's data may
//!   no longer be downloaded and calls under the SAN are not covered).
//!
//! Documents, beside the registry's `current.json` (keys in [`RegistryKeys`]): `subscription.json` (declared by
//! `dncctl registry subscription`), `downloads.json` (written by each download that succeeds, conditionally, so two
//! executions cannot lose each other's record), `download-failure.json` (the last failure, cleared by a success).

use super::*;

/// The SAN renewal alarm fires this many days before the renewal date.
pub const RENEWAL_WARNING_DAYS: i64 = 30;
/// The continuity alarm fires when the registry lacks this many days of change lists.
pub const NOT_CONTINUOUS_ALARM_DAYS: i64 = 2;
/// The staleness warning fires this many days before the 31-day limit.
pub const STALE_WARNING_DAYS: i64 = WARN_DAYS_BEFORE as i64;

/// The FTC subscription a registry is downloaded under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// The Subscription Account Number (renewed every year, not transferable).
    pub san: String,
    /// The area codes it pays for (three digits each).
    pub area_codes: Vec<String>,
    /// The day the SAN expires unless renewed.
    pub renews_on: NaiveDate,
    /// When it was declared.
    #[serde(default)]
    pub declared_at: Option<DateTime<Utc>>,
}

impl Subscription {
    /// A subscription, checked: a SAN of letters and digits (1-32), at least one area code.
    pub fn new(
        san: &str,
        area_codes: &BTreeSet<u16>,
        renews_on: NaiveDate,
        declared_at: DateTime<Utc>,
    ) -> Result<Subscription, RegistryError> {
        let san = san.trim();
        if san.is_empty() || san.len() > 32 || !san.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(RegistryError::BadOption {
                what: "SAN".into(),
                reason: "a Subscription Account Number is 1-32 letters and digits".into(),
            });
        }
        if area_codes.is_empty() {
            return Err(RegistryError::BadOption {
                what: "area codes".into(),
                reason: "a subscription covers one area code at least".into(),
            });
        }
        Ok(Subscription {
            san: san.to_string(),
            area_codes: area_codes.iter().map(|a| format!("{a:03}")).collect(),
            renews_on,
            declared_at: Some(declared_at),
        })
    }

    /// Its area codes as numbers.
    pub fn codes(&self) -> Result<BTreeSet<u16>, RegistryError> {
        parse_area_codes(&self.area_codes.join(","))
    }
}

/// A download that failed: kept beside the registry until a download succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadFailure {
    /// When the failure was recorded.
    pub at: DateTime<Utc>,
    /// `errorType` (`Fatal`, `Transient`, `InvalidInput`) or the execution's end (`Execution.TIMED_OUT`).
    pub error: String,
    /// Its message, led by the code (`LoginFailed: …`, `FileDamaged: …`).
    pub cause: String,
}

impl DownloadFailure {
    /// The code the message leads with (`LoginFailed`), or the error when it leads with none.
    pub fn code(&self) -> &str {
        self.cause
            .split_once(':')
            .map(|(c, _)| c.trim())
            .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric()))
            .unwrap_or(&self.error)
    }

    /// The FTC refused the account (`LoginFailed`, `LoginDisabled`, `CertificationNotAgreed`, `InvalidCompanyID`).
    pub fn is_login_refusal(&self) -> bool {
        matches!(
            self.code(),
            "LoginFailed" | "LoginDisabled" | "CertificationNotAgreed" | "InvalidCompanyID"
        )
    }
}

/// The last change list downloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeListDownload {
    /// When it was applied.
    pub at: DateTime<Utc>,
    /// `applied` or `noChanges`.
    pub outcome: String,
    /// The checked file (absent for `noChanges`).
    #[serde(default)]
    pub file_key: Option<String>,
    /// Lines in the checked file (0 for `noChanges`).
    #[serde(default)]
    pub lines: u64,
}

/// `downloads.json`: what the FTC downloads fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadLog {
    /// The last change list.
    #[serde(default)]
    pub last_change_list: Option<ChangeListDownload>,
    /// The last full download of each area code (three digits → when it was fetched).
    #[serde(default)]
    pub full: BTreeMap<String, DateTime<Utc>>,
}

fn document<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::Document {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

async fn read_doc<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    key: String,
) -> Result<Option<T>, RegistryError> {
    match store.get_bytes(&key).await? {
        Some(bytes) => document(&key, &bytes).map(Some),
        None => Ok(None),
    }
}

/// The subscription declared for `name`.
pub async fn subscription(
    store: &dyn ObjectStore,
    name: &str,
) -> Result<Option<Subscription>, RegistryError> {
    check_name(name)?;
    read_doc(store, RegistryKeys::new(name).subscription()).await
}

/// Declare the subscription of `name` (the bucket keeps every earlier declaration as an older version).
pub async fn declare_subscription(
    store: &dyn ObjectStore,
    name: &str,
    subscription: &Subscription,
) -> Result<(), RegistryError> {
    check_name(name)?;
    subscription.codes()?;
    store
        .put_bytes(
            &RegistryKeys::new(name).subscription(),
            serde_json::to_vec_pretty(subscription).expect("serializes"),
        )
        .await?;
    Ok(())
}

/// The last failed download of `name`.
pub async fn download_failure(
    store: &dyn ObjectStore,
    name: &str,
) -> Result<Option<DownloadFailure>, RegistryError> {
    check_name(name)?;
    read_doc(store, RegistryKeys::new(name).download_failure()).await
}

/// Record a failed download of `name` (shown by its status until a download succeeds).
pub async fn record_download_failure(
    store: &dyn ObjectStore,
    name: &str,
    failure: &DownloadFailure,
) -> Result<(), RegistryError> {
    check_name(name)?;
    store
        .put_bytes(
            &RegistryKeys::new(name).download_failure(),
            serde_json::to_vec_pretty(failure).expect("serializes"),
        )
        .await?;
    Ok(())
}

/// A download of `name` succeeded: the failure recorded before it is over.
pub async fn clear_download_failure(
    store: &dyn ObjectStore,
    name: &str,
) -> Result<(), RegistryError> {
    check_name(name)?;
    store
        .delete(&RegistryKeys::new(name).download_failure())
        .await?;
    Ok(())
}

/// What the downloads of `name` fetched.
pub async fn download_log(
    store: &dyn ObjectStore,
    name: &str,
) -> Result<Option<DownloadLog>, RegistryError> {
    check_name(name)?;
    read_doc(store, RegistryKeys::new(name).download_log()).await
}

/// Update `downloads.json` of `name` with `update`, conditionally (a concurrent writer's record is read again and
/// kept, never overwritten).
pub async fn record_download(
    store: &dyn ObjectStore,
    name: &str,
    update: &(dyn Fn(&mut DownloadLog) + Sync),
) -> Result<(), RegistryError> {
    check_name(name)?;
    let key = RegistryKeys::new(name).download_log();
    for _ in 0..8 {
        let written = match store.get_tagged(&key).await? {
            Some((bytes, tag)) => {
                let mut log: DownloadLog = document(&key, &bytes)?;
                update(&mut log);
                let body = serde_json::to_vec_pretty(&log).expect("serializes");
                store.put_if_match(&key, body, &tag).await?
            }
            None => {
                let mut log = DownloadLog::default();
                update(&mut log);
                let body = serde_json::to_vec_pretty(&log).expect("serializes");
                store.put_if_absent(&key, body).await?
            }
        };
        if written {
            return Ok(());
        }
    }
    Err(RegistryError::Conflict(name.to_string()))
}

/// Whole days from `now` to `then` (negative once past), by floor: 23 hours left is 0 days.
fn days_until(then: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (then - now).num_seconds().div_euclid(86_400)
}

/// Fill the watch's figures of `status` at `now` from the documents beside the registry.
pub fn watch(
    status: &mut RegistryStatus,
    subscription: Option<Subscription>,
    log: Option<DownloadLog>,
    failure: Option<DownloadFailure>,
    now: DateTime<Utc>,
) {
    status.days_to_stale = days_until(
        status.as_of + TimeDelta::days(i64::from(status.max_age_days)),
        now,
    );
    // A nightly change list covers up to the day before it is requested.
    let yesterday = now.date_naive() - chrono::Days::new(1);
    status.days_not_continuous = status
        .continuous_through
        .map(|through| (yesterday - through).num_days().max(0));
    if let Some(s) = &subscription {
        let covered: BTreeSet<&str> = status
            .covered_area_codes
            .iter()
            .map(String::as_str)
            .collect();
        status.subscribed_not_covered = s
            .area_codes
            .iter()
            .filter(|a| !covered.contains(a.as_str()))
            .cloned()
            .collect();
        status.days_to_renewal = Some(days_until(
            s.renews_on
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc(),
            now,
        ));
    }
    if let Some(log) = log {
        status.last_full_download = log.full;
        status.last_change_list = log.last_change_list;
    }
    status.subscription = subscription;
    status.download_failure = failure;
}

/// The watch's metrics of `status` (`(name, value)`), published as EMF with the dimension `Registry` by each step
/// of the download workflow; template.yaml alarms on each of them.
pub fn watch_metrics(status: &RegistryStatus) -> Vec<(&'static str, f64)> {
    let mut m = vec![("RegistryDaysToStale", status.days_to_stale as f64)];
    if let Some(d) = status.days_not_continuous {
        m.push(("RegistryDaysNotContinuous", d as f64));
    }
    if let Some(d) = status.days_to_renewal {
        m.push(("FtcDaysToRenewal", d as f64));
    }
    if status.subscription.is_some() {
        m.push((
            "FtcSubscribedNotCovered",
            status.subscribed_not_covered.len() as f64,
        ));
    }
    m
}

/// The metric a refused login publishes (1 per refusal).
pub const LOGIN_REFUSED_METRIC: &str = "FtcLoginRefused";

/// Every metric the watch publishes, each with its alarm in template.yaml.
pub const WATCH_METRICS: [&str; 5] = [
    "RegistryDaysToStale",
    "RegistryDaysNotContinuous",
    "FtcDaysToRenewal",
    "FtcSubscribedNotCovered",
    LOGIN_REFUSED_METRIC,
];

/// One EMF line of `metrics` for registry `name` (namespace `dncflow`, dimension `Registry`).
pub fn emf_line(name: &str, metrics: &[(&str, f64)], timestamp_ms: i64) -> String {
    let mut doc = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "dncflow",
                "Dimensions": [["Registry"]],
                "Metrics": metrics.iter().map(|(n, _)| serde_json::json!({"Name": n, "Unit": "None"})).collect::<Vec<_>>(),
            }],
        },
        "Registry": name,
    });
    for (n, v) in metrics {
        doc[*n] = serde_json::json!(v);
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(as_of: &str, through: Option<&str>, covered: &[&str]) -> RegistryStatus {
        serde_json::from_value(serde_json::json!({
            "registry": "national", "version": "v", "asOf": as_of, "ageDays": 0, "maxAgeDays": 31,
            "status": "CURRENT", "total": 1, "areaCodes": covered.len(), "indexBytes": 1, "changeLists": 0,
            "coveredAreaCodes": covered, "continuousThrough": through,
        }))
        .unwrap()
    }

    #[test]
    fn the_figures_a_person_acts_on() {
        let now: DateTime<Utc> = "2026-12-06T05:30:00Z".parse().unwrap();
        let sub = Subscription::new(
            "ABC123",
            &[202u16, 415, 818].into_iter().collect(),
            "2027-01-05".parse().unwrap(),
            now,
        )
        .unwrap();
        // Kept up: continuous through yesterday, as of yesterday's end.
        let mut s = status("2026-12-05T23:59:59Z", Some("2026-12-05"), &["202", "415"]);
        watch(&mut s, Some(sub.clone()), None, None, now);
        assert_eq!(s.days_not_continuous, Some(0));
        assert_eq!(s.days_to_stale, 30);
        assert_eq!(s.subscribed_not_covered, vec!["818".to_string()]);
        // 2027-01-05 00:00 is 29 days and 18.5 hours away: 29 whole days, within the alarm's 30.
        assert_eq!(s.days_to_renewal, Some(29));
        assert!(s.needs_attention(), "an area code paid for and not held");
        // Two nights missed: continuous through the 3rd, the alarm's threshold.
        let mut s = status(
            "2026-12-03T23:59:59Z",
            Some("2026-12-03"),
            &["202", "415", "818"],
        );
        watch(&mut s, Some(sub.clone()), None, None, now);
        assert_eq!(s.days_not_continuous, Some(NOT_CONTINUOUS_ALARM_DAYS));
        assert_eq!(s.days_to_stale, 28);
        assert!(s.subscribed_not_covered.is_empty());
        assert!(!s.needs_attention());
        // Stale by a day and a half: negative, by floor.
        let mut s = status("2026-11-03T17:00:00Z", Some("2026-11-03"), &["202"]);
        watch(&mut s, None, None, None, now);
        assert_eq!(s.days_to_stale, -2);
        assert_eq!(s.days_to_renewal, None);
        let metrics = watch_metrics(&s);
        assert_eq!(
            metrics,
            vec![
                ("RegistryDaysToStale", -2.0),
                ("RegistryDaysNotContinuous", 32.0)
            ]
        );
        // A renewal passed needs someone; a failure recorded too.
        let late = Subscription {
            renews_on: "2026-12-01".parse().unwrap(),
            ..sub
        };
        let mut s = status(
            "2026-12-05T23:59:59Z",
            Some("2026-12-05"),
            &["202", "415", "818"],
        );
        watch(&mut s, Some(late), None, None, now);
        assert_eq!(s.days_to_renewal, Some(-6));
        assert!(s.needs_attention());
        let mut s = status("2026-12-05T23:59:59Z", Some("2026-12-05"), &["202"]);
        let failure = DownloadFailure {
            at: now,
            error: "Fatal".into(),
            cause: "LoginDisabled: FTC refused the login".into(),
        };
        assert!(failure.is_login_refusal());
        watch(&mut s, None, None, Some(failure), now);
        assert!(s.needs_attention());
    }

    #[test]
    fn a_failure_names_its_code() {
        let f = |error: &str, cause: &str| DownloadFailure {
            at: Utc::now(),
            error: error.into(),
            cause: cause.into(),
        };
        assert_eq!(
            f("InvalidInput", "FileDamaged: FTC file changes is damaged").code(),
            "FileDamaged"
        );
        assert!(!f("InvalidInput", "FileDamaged: x").is_login_refusal());
        assert_eq!(
            f("Execution.TIMED_OUT", "the execution ended TIMED_OUT: x y").code(),
            "Execution.TIMED_OUT"
        );
        assert!(f("Fatal", "InvalidCompanyID: no").is_login_refusal());
    }

    #[test]
    fn a_subscription_is_checked() {
        let now = Utc::now();
        let day: NaiveDate = "2027-01-01".parse().unwrap();
        let codes: BTreeSet<u16> = [202u16].into_iter().collect();
        assert!(Subscription::new("", &codes, day, now).is_err());
        assert!(Subscription::new("A B", &codes, day, now).is_err());
        assert!(Subscription::new("AB1", &BTreeSet::new(), day, now).is_err());
        let s = Subscription::new(" AB1 ", &codes, day, now).unwrap();
        assert_eq!(
            (s.san.as_str(), s.area_codes.clone()),
            ("AB1", vec!["202".to_string()])
        );
        assert_eq!(s.codes().unwrap(), codes);
    }

    /// The names published here, alarmed on in template.yaml, and required by scripts/resilience.py are the same.
    #[test]
    fn every_watch_metric_is_alarmed_on_and_the_template_check_requires_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
        let check = std::fs::read_to_string(root.join("scripts/resilience.py")).unwrap();
        for m in WATCH_METRICS {
            assert!(
                template.contains(&format!("MetricName: {m}\n")),
                "{m}: no alarm"
            );
            assert!(
                check.contains(&format!("\"{m}\"")),
                "{m}: not in resilience.py"
            );
        }
        let mut s = status("2026-12-05T00:00:00Z", Some("2026-12-04"), &["202"]);
        let sub = Subscription::new(
            "S1",
            &[202u16].into_iter().collect(),
            "2027-06-30".parse().unwrap(),
            Utc::now(),
        )
        .unwrap();
        watch(&mut s, Some(sub), None, None, Utc::now());
        let published: Vec<&str> = watch_metrics(&s).into_iter().map(|(n, _)| n).collect();
        assert_eq!(published.len(), WATCH_METRICS.len() - 1);
        assert!(published.iter().all(|n| WATCH_METRICS.contains(n)));
    }

    #[test]
    fn emf_lines_carry_the_registry_dimension() {
        let line = emf_line("national", &[("RegistryDaysToStale", 12.0)], 5);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["Registry"], "national");
        assert_eq!(v["RegistryDaysToStale"], 12.0);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Registry"
        );
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "dncflow");
    }
}
