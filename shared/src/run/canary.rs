//! `runs/<runId>/canary/<round>.json`: the canary probe that ended a round's cooldown, read by reconciliation of the
//! same round (and summarised in the run's report).

use serde::{Deserialize, Serialize};

use super::{CanaryResult, DocumentError, RunKeys};
use crate::adapters::store::ObjectStore;
use crate::phone::mask;

/// A canary probe as the cooldown stage records it for reconciliation: the numbers not suppressed yet are kept whole,
/// because reconciliation must tell a lost write (not on the list: it is re-uploaded) from an entry on the list that
/// does not suppress (the list is not propagating: the run fails).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryProbe {
    /// Uploaded numbers the canary asked CXone about.
    pub probed: usize,
    /// E.164 numbers answered anything but suppressed.
    pub pending: Vec<String>,
    /// When the round's last write to CXone ended (RFC 3339): the time the cooldown counted from. Locally the
    /// upload invocations' `lastWriteAt`; in the state machine, which keeps no per-shard results, the first check
    /// after the uploads ended (no earlier than any write). The run's timeline shows it as "uploaded".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_write_at: Option<String>,
    /// When the probe that ended the cooldown answered (RFC 3339): the list shown suppressing what was written,
    /// "propagated" on the run's timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probed_at: Option<String>,
}

impl CanaryProbe {
    /// The probe of `numbers` given, for each, whether CXone answered it suppressed (`answers`, one per number).
    pub fn from_answers(numbers: &[String], answers: &[bool]) -> CanaryProbe {
        CanaryProbe {
            probed: numbers.len(),
            pending: numbers
                .iter()
                .zip(answers)
                .filter(|(_, ok)| !**ok)
                .map(|(n, _)| n.clone())
                .collect(),
            ..CanaryProbe::default()
        }
    }

    /// Of those, numbers CXone answered suppressed.
    pub fn suppressed(&self) -> usize {
        self.probed - self.pending.len()
    }

    /// The summary for logs and reports, numbers masked.
    pub fn result(&self) -> CanaryResult {
        CanaryResult {
            probed: self.probed,
            suppressed: self.suppressed(),
            pending: self.pending.iter().map(|n| mask(n)).collect(),
        }
    }
}

/// Record the probe that ended the cooldown of `round` (replacing whatever an earlier execution of the run left).
pub async fn write_canary(
    store: &dyn ObjectStore,
    keys: &RunKeys,
    round: u32,
    canary: &CanaryProbe,
) -> Result<(), DocumentError> {
    let body = serde_json::to_vec(canary).expect("canary probes serialize");
    Ok(store.put_bytes(&keys.canary(round), body).await?)
}

/// The probe that ended the cooldown of `round`, `None` when the cooldown recorded none. One that does not parse is
/// an error naming it.
pub async fn read_canary(
    store: &dyn ObjectStore,
    keys: &RunKeys,
    round: u32,
) -> Result<Option<CanaryProbe>, DocumentError> {
    let key = keys.canary(round);
    let Some(bytes) = store.get_bytes(&key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        DocumentError::unreadable(format!(
            "{key} is not a canary probe: {}",
            crate::redact::json_error(&e)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_probe_round_trips_and_masks_its_summary() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::adapters::store::LocalStore {
            root: dir.path().to_path_buf(),
        };
        let keys = RunKeys::new("r");
        let numbers = ["+12025550101".to_string(), "+12025550102".to_string()];
        let probe = CanaryProbe::from_answers(&numbers, &[true, false]);
        assert_eq!((probe.probed, probe.suppressed()), (2, 1));
        assert_eq!(probe.pending, ["+12025550102"]);
        assert!(!probe.result().pending[0].contains("5550102"));
        assert_eq!(read_canary(&store, &keys, 0).await.unwrap(), None);
        write_canary(&store, &keys, 0, &probe).await.unwrap();
        assert_eq!(read_canary(&store, &keys, 0).await.unwrap(), Some(probe));
        store
            .put_bytes(&keys.canary(1), b"[]".to_vec())
            .await
            .unwrap();
        let err = read_canary(&store, &keys, 1).await.unwrap_err();
        assert!(err.to_string().contains("is not a canary probe"), "{err}");
    }
}
