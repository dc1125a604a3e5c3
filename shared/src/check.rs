//! Outbound protection: check numbers against the DNC lists before they are dialed.
//!
//! Fail-safe: a number whose check could not be completed is `error`, never `allowed`, and the response says the
//! batch is not safe to dial in full. The same normalizer as ingestion reads the numbers. Numbers known suppressed
//! from the latest reconciled snapshot (SHA-256 hashes of E.164 numbers) are answered without a call; numbers of a
//! run that has not reached SUCCESS yet are answered suppressed (`pending-propagation`): CXone may not show them yet.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cxone::{CheckStatus, ContactQuery, DncApi, MAX_CONTACTS_PER_REQUEST};
use crate::phone::{DefaultRegion, Normalizer};

/// One number to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactIn {
    /// As the campaign holds it.
    pub phone_number: String,
    /// Region for numbers without a country code (default US).
    #[serde(default)]
    pub region_code: Option<String>,
}

/// A check request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckRequest {
    /// The numbers.
    pub contacts: Vec<ContactIn>,
    /// Lists to check (default: every list a rule applies).
    #[serde(default)]
    pub list_ids: Option<Vec<String>>,
}

/// Verdict for one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Do not dial.
    Suppressed,
    /// May be dialed.
    Allowed,
    /// Not a dialable number.
    Invalid,
    /// The check could not be completed: do not dial.
    Error,
}

/// Result for one input item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// The input as given.
    pub input: String,
    /// E.164, or `None` when invalid.
    pub phone_number: Option<String>,
    /// Verdict.
    pub status: Verdict,
    /// Why.
    pub reason: String,
    /// Lists that matched.
    pub list_matches: Vec<String>,
}

/// Counts of one check call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckMetrics {
    /// Items in the request.
    pub total: usize,
    /// Suppressed.
    pub suppressed: usize,
    /// Allowed.
    pub allowed: usize,
    /// Invalid.
    pub invalid: usize,
    /// Errors.
    pub errors: usize,
    /// Suppressed / (total − invalid).
    pub suppression_rate: f64,
    /// Wall time.
    pub duration_ms: u64,
    /// Distinct numbers.
    pub distinct: usize,
    /// Answered from the local snapshot.
    pub prefiltered: usize,
    /// Answered suppressed because a run is still propagating.
    pub pending_propagation: usize,
    /// Calls to CXone.
    pub cxone_calls: usize,
}

/// The answer to a check request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResponse {
    /// One result per input item, in input order.
    pub results: Vec<CheckResult>,
    /// False when any number could not be checked: the batch must not be dialed in full.
    pub safe_to_dial: bool,
    /// Counts.
    pub metrics: CheckMetrics,
}

/// SHA-256 (hex) of an E.164 number: how snapshots and audit records name numbers.
pub fn number_hash(e164: &str) -> String {
    hex::encode(Sha256::digest(e164.as_bytes()))
}

/// Numbers known suppressed, as hashes (from the latest reconciled snapshot).
#[derive(Debug, Default, Clone)]
pub struct SuppressionSnapshot {
    hashes: HashSet<[u8; 32]>,
}

impl SuppressionSnapshot {
    /// From hex hashes, one a line (blank lines ignored; malformed lines skipped and counted).
    pub fn from_lines(text: &str) -> (SuppressionSnapshot, usize) {
        let mut hashes = HashSet::new();
        let mut bad = 0;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match hex::decode(line)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            {
                Some(h) => {
                    hashes.insert(h);
                }
                None => bad += 1,
            }
        }
        (SuppressionSnapshot { hashes }, bad)
    }

    /// From E.164 numbers.
    pub fn from_numbers<'a>(numbers: impl IntoIterator<Item = &'a str>) -> SuppressionSnapshot {
        SuppressionSnapshot {
            hashes: numbers
                .into_iter()
                .map(|n| Sha256::digest(n.as_bytes()).into())
                .collect(),
        }
    }

    /// The snapshot as hex lines.
    pub fn to_lines(&self) -> String {
        let mut lines: Vec<String> = self.hashes.iter().map(hex::encode).collect();
        lines.sort();
        lines.join("\n") + "\n"
    }

    /// Whether the number is known suppressed.
    pub fn contains(&self, e164: &str) -> bool {
        let h: [u8; 32] = Sha256::digest(e164.as_bytes()).into();
        self.hashes.contains(&h)
    }

    /// Hashes held.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// Check `request` against CXone, the snapshot and the propagating numbers. Never fails as a whole: what could not
/// be checked is answered `error`.
pub async fn check(
    api: &dyn DncApi,
    request: &CheckRequest,
    snapshot: &SuppressionSnapshot,
    propagating: &HashSet<String>,
    concurrency: usize,
) -> CheckResponse {
    let started = Instant::now();
    let mut results: Vec<CheckResult> = Vec::with_capacity(request.contacts.len());
    // E.164 → input positions; the first region code seen is sent.
    let mut distinct: Vec<(String, String)> = Vec::new();
    let mut positions: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, c) in request.contacts.iter().enumerate() {
        let region = c
            .region_code
            .as_deref()
            .and_then(DefaultRegion::from_code)
            .unwrap_or_default();
        match Normalizer::new(region).normalize(&c.phone_number) {
            Ok(n) => {
                let e164 = n.e164.to_string();
                let slot = positions.entry(e164.clone()).or_default();
                if slot.is_empty() {
                    distinct.push((e164.clone(), region.name().to_string()));
                }
                slot.push(i);
                results.push(CheckResult {
                    input: c.phone_number.clone(),
                    phone_number: Some(e164),
                    status: Verdict::Error,
                    reason: "not checked".into(),
                    list_matches: Vec::new(),
                });
            }
            Err(reason) => results.push(CheckResult {
                input: c.phone_number.clone(),
                phone_number: None,
                status: Verdict::Invalid,
                reason: reason.code().to_string(),
                list_matches: Vec::new(),
            }),
        }
    }
    let mut metrics = CheckMetrics {
        total: request.contacts.len(),
        distinct: distinct.len(),
        ..Default::default()
    };
    let mut verdicts: HashMap<String, (Verdict, String, Vec<String>)> = HashMap::new();
    let mut to_query: Vec<(String, String)> = Vec::new();
    for (e164, region) in distinct {
        if snapshot.contains(&e164) {
            metrics.prefiltered += 1;
            verdicts.insert(
                e164,
                (Verdict::Suppressed, "local-snapshot".into(), Vec::new()),
            );
        } else if propagating.contains(&e164) {
            metrics.pending_propagation += 1;
            verdicts.insert(
                e164,
                (
                    Verdict::Suppressed,
                    "pending-propagation".into(),
                    Vec::new(),
                ),
            );
        } else {
            to_query.push((e164, region));
        }
    }
    let list_ids = request.list_ids.clone().unwrap_or_default();
    let chunks: Vec<Vec<ContactQuery>> = to_query
        .chunks(MAX_CONTACTS_PER_REQUEST)
        .map(|chunk| {
            chunk
                .iter()
                .map(|(e164, region)| ContactQuery {
                    phone_number: e164.clone(),
                    region_code: region.clone(),
                    list_ids: list_ids.clone(),
                    match_type: "exact".into(),
                })
                .collect()
        })
        .collect();
    metrics.cxone_calls = chunks.len();
    let answers: Vec<_> = futures::stream::iter(chunks.iter())
        .map(|chunk| async move { (chunk, api.check_contacts(chunk).await) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (chunk, answer) in answers {
        match answer {
            Ok(found) => {
                for (q, r) in chunk.iter().zip(found) {
                    let verdict = match r.status {
                        CheckStatus::Suppressed => Verdict::Suppressed,
                        CheckStatus::Allowed => Verdict::Allowed,
                        CheckStatus::Error => Verdict::Error,
                    };
                    verdicts.insert(q.phone_number.clone(), (verdict, r.reason, r.list_matches));
                }
            }
            Err(e) => {
                tracing::warn!(numbers = chunk.len(), error = %e, "check chunk failed: answered error");
                for q in chunk {
                    verdicts.insert(
                        q.phone_number.clone(),
                        (Verdict::Error, format!("check failed: {e}"), Vec::new()),
                    );
                }
            }
        }
    }
    for result in results.iter_mut() {
        if let Some(e164) = &result.phone_number {
            if let Some((v, reason, lists)) = verdicts.get(e164) {
                result.status = *v;
                result.reason = reason.clone();
                result.list_matches = lists.clone();
            }
        }
        match result.status {
            Verdict::Suppressed => metrics.suppressed += 1,
            Verdict::Allowed => metrics.allowed += 1,
            Verdict::Invalid => metrics.invalid += 1,
            Verdict::Error => metrics.errors += 1,
        }
    }
    let checkable = metrics.total - metrics.invalid;
    metrics.suppression_rate = if checkable == 0 {
        0.0
    } else {
        metrics.suppressed as f64 / checkable as f64
    };
    metrics.duration_ms = started.elapsed().as_millis() as u64;
    CheckResponse {
        safe_to_dial: metrics.errors == 0,
        results,
        metrics,
    }
}

/// The metrics as a CloudWatch Embedded Metric Format log line.
pub fn emf_line(metrics: &CheckMetrics, function: &str, timestamp_ms: i64) -> String {
    crate::metrics::emf(
        function,
        &[
            ("Total", "Count", metrics.total as f64),
            ("Suppressed", "Count", metrics.suppressed as f64),
            ("Allowed", "Count", metrics.allowed as f64),
            ("Invalid", "Count", metrics.invalid as f64),
            ("Errors", "Count", metrics.errors as f64),
            ("SuppressionRate", "None", metrics.suppression_rate),
            ("DurationMs", "Milliseconds", metrics.duration_ms as f64),
        ],
        timestamp_ms,
    )
}

/// An audit record of one check: hashes of the numbers with their verdicts, never the numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// RFC 3339.
    pub timestamp: String,
    /// Counts.
    pub metrics: CheckMetrics,
    /// Whether the batch was safe to dial.
    pub safe_to_dial: bool,
    /// `[sha256(E.164) or "invalid", verdict]` per item.
    pub items: Vec<(String, Verdict)>,
}

/// The audit record of a response.
pub fn audit_record(response: &CheckResponse, timestamp: &str) -> AuditRecord {
    AuditRecord {
        timestamp: timestamp.to_string(),
        metrics: response.metrics.clone(),
        safe_to_dial: response.safe_to_dial,
        items: response
            .results
            .iter()
            .map(|r| {
                (
                    r.phone_number
                        .as_deref()
                        .map(number_hash)
                        .unwrap_or_else(|| "invalid".into()),
                    r.status,
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_and_matches_hashes() {
        let snap = SuppressionSnapshot::from_numbers(["+12025550198", "+442079460018"]);
        assert!(snap.contains("+12025550198"));
        assert!(!snap.contains("+12025550199"));
        let (again, bad) =
            SuppressionSnapshot::from_lines(&format!("{}\nnot-hex\n", snap.to_lines()));
        assert_eq!((again.len(), bad), (2, 1));
        assert!(again.contains("+442079460018"));
    }

    #[test]
    fn emf_line_has_the_metrics() {
        let m = CheckMetrics {
            total: 3,
            suppressed: 1,
            allowed: 1,
            invalid: 1,
            suppression_rate: 0.5,
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_str(&emf_line(&m, "check", 1)).unwrap();
        assert_eq!(v["Total"], 3.0);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            7
        );
    }
}
