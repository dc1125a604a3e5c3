//! `runs/<runId>/snapshot.txt`: what a verified run read back from CXone, one line per number it holds (the number's
//! SHA-256, and its record's expiration when it has one). The check answers a number in the snapshot of its list's
//! last verified run `suppressed` without asking CXone; an upload skips a number the snapshot shows held at least as
//! long as its file asks. Written by reconcile when a run verifies, read by the check and the upload.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{status_key, DocumentError, ListStatus, RunKeys};
use crate::adapters::store::ObjectStore;

/// SHA-256 (hex) of an E.164 number: how snapshots and audit records name numbers.
pub fn number_hash(e164: &str) -> String {
    hex::encode(Sha256::digest(e164.as_bytes()))
}

/// A line of a verified run's snapshot: the number's SHA-256 (hex) and, when CXone's record expires, its expiration
/// (RFC 3339, seconds): `<hash> <expiration>`, or `<hash>` alone for a record that never lapses. The expiration is
/// what lets a later upload skip a held number only when CXone holds it at least as long as asked
/// ([`SnapshotHold`]).
pub fn snapshot_line(e164: &str, expiration: Option<DateTime<Utc>>) -> String {
    let hash = number_hash(e164);
    match expiration {
        None => hash,
        Some(e) => format!(
            "{hash} {}",
            e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    }
}

/// A snapshot line read back: the hash and how long the record holds (`None`: never lapses; a line of an older
/// snapshot, hash only, reads the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotHold {
    /// SHA-256 (hex) of the E.164 number.
    pub hash: String,
    /// When CXone's record expires.
    pub expiration: Option<DateTime<Utc>>,
}

impl SnapshotHold {
    /// Read one line; `None` for a blank one. An expiration that does not parse is taken as already passed: the
    /// number is then sent again rather than assumed held.
    pub fn parse(line: &str) -> Option<SnapshotHold> {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        Some(match line.split_once(' ') {
            None => SnapshotHold {
                hash: line.to_string(),
                expiration: None,
            },
            Some((hash, exp)) => SnapshotHold {
                hash: hash.to_string(),
                expiration: Some(
                    DateTime::parse_from_rfc3339(exp.trim())
                        .map_or(DateTime::<Utc>::MIN_UTC, |d| d.with_timezone(&Utc)),
                ),
            },
        })
    }

    /// Whether the record suppresses the number as long as `asked` (the file's expiration; `None`: as long as the
    /// list keeps it) at `now`: not expired, and expiring no earlier than asked. The same rule as reconcile's.
    pub fn holds(&self, asked: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        match (self.expiration, asked) {
            (None, _) => true,
            (Some(held), None) => held > now,
            (Some(held), Some(asked)) => held > now && held >= asked,
        }
    }
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
            // `<hash>` or `<hash> <expiration>` ([`snapshot_line`]): the check needs the hash only.
            let hash = line.split_once(' ').map_or(line, |(h, _)| h);
            match hex::decode(hash)
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

    /// A snapshot of these E.164 numbers, each held as the SHA-256 of its text.
    pub fn from_numbers(numbers: impl IntoIterator<Item = impl AsRef<str>>) -> SuppressionSnapshot {
        SuppressionSnapshot {
            hashes: numbers
                .into_iter()
                .map(|n| Sha256::digest(n.as_ref().as_bytes()).into())
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
        // No hash to compute against an empty snapshot (a registry-only check of a campaign file).
        if self.hashes.is_empty() {
            return false;
        }
        let h: [u8; 32] = Sha256::digest(e164.as_bytes()).into();
        self.hashes.contains(&h)
    }

    /// Distinct numbers in the snapshot (one hash each).
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether the snapshot holds no number.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// Write the snapshot of verified run `keys`: each number CXone holds with its record's expiration, sorted.
pub async fn write_snapshot<N: AsRef<str>>(
    store: &dyn ObjectStore,
    keys: &RunKeys,
    held: impl IntoIterator<Item = (N, Option<DateTime<Utc>>)>,
) -> Result<(), DocumentError> {
    let mut lines: Vec<String> = held
        .into_iter()
        .map(|(n, expiration)| snapshot_line(n.as_ref(), expiration))
        .collect();
    lines.sort_unstable();
    let mut text = lines.join("\n");
    text.push('\n');
    drop(lines);
    store.put_bytes(&keys.snapshot(), text.into_bytes()).await?;
    Ok(())
}

/// The snapshot of run `run_id` as text, `None` when it has none. One that is not text is an error.
pub async fn read_snapshot(
    store: &dyn ObjectStore,
    run_id: &str,
) -> Result<Option<String>, DocumentError> {
    let key = RunKeys::new(run_id).snapshot();
    match store.get_bytes(&key).await? {
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| DocumentError::Unreadable {
                message: format!("{key} is not text"),
                source: Some(Box::new(e)),
            }),
        None => Ok(None),
    }
}

/// The snapshot of the list's last successful run (one line a number), if any, as bytes: what an upload skips held
/// numbers by. A status that does not parse, or names no successful run, gives none: every number is then sent (a
/// number sent again is harmless; one skipped wrongly would not be).
pub async fn verified_snapshot(
    store: &dyn ObjectStore,
    list: &str,
) -> Result<Option<Vec<u8>>, DocumentError> {
    let Some(bytes) = store.get_bytes(&status_key(list)).await? else {
        return Ok(None);
    };
    let Some(last) = serde_json::from_slice::<ListStatus>(&bytes)
        .ok()
        .and_then(|s| s.last_success)
    else {
        return Ok(None);
    };
    Ok(store
        .get_bytes(&RunKeys::new(&last.run_id).snapshot())
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_lines_carry_expirations_and_hold_as_long_as_asked() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let now = at("2026-12-06T00:00:00Z");
        let line = snapshot_line("+12025550101", Some(at("2027-06-01T00:00:00Z")));
        assert_eq!(
            line,
            format!("{} 2027-06-01T00:00:00Z", number_hash("+12025550101"))
        );
        let hold = SnapshotHold::parse(&line).unwrap();
        assert!(
            hold.holds(Some(at("2027-06-01T00:00:00Z")), now),
            "same expiration"
        );
        assert!(
            hold.holds(Some(at("2027-01-01T00:00:00Z")), now),
            "later than asked"
        );
        assert!(hold.holds(None, now), "the list's default: held while live");
        assert!(
            !hold.holds(Some(at("2028-06-01T00:00:00Z")), now),
            "a newer file extends it"
        );
        assert!(!hold.holds(None, at("2027-06-02T00:00:00Z")), "expired");
        // Hash only (older snapshots, records that never lapse): held for any expiration.
        let forever = SnapshotHold::parse(&number_hash("+12025550101")).unwrap();
        assert!(forever.holds(Some(at("2099-01-01T00:00:00Z")), now));
        // An unreadable expiration is taken as passed: sent again rather than assumed held.
        assert!(!SnapshotHold::parse("abc garbage").unwrap().holds(None, now));
        assert_eq!(SnapshotHold::parse("  "), None);
        // The check reads either form.
        let (snap, bad) =
            SuppressionSnapshot::from_lines(&format!("{line}\n{}\n", number_hash("+12025550102")));
        assert_eq!(bad, 0);
        assert!(snap.contains("+12025550101") && snap.contains("+12025550102"));
    }

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

    #[tokio::test]
    async fn a_written_snapshot_is_read_back_by_the_check_and_the_upload() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::adapters::store::LocalStore {
            root: dir.path().to_path_buf(),
        };
        let at = "2027-06-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let keys = RunKeys::new("r1");
        write_snapshot(
            &store,
            &keys,
            [("+12025550102", None), ("+12025550101", Some(at))],
        )
        .await
        .unwrap();
        let text = read_snapshot(&store, "r1").await.unwrap().unwrap();
        let (snap, bad) = SuppressionSnapshot::from_lines(&text);
        assert_eq!((snap.len(), bad), (2, 0));
        assert!(text.contains(&snapshot_line("+12025550101", Some(at))));
        assert_eq!(read_snapshot(&store, "r2").await.unwrap(), None);
        // The upload finds it through the list's last success only.
        assert_eq!(verified_snapshot(&store, "l").await.unwrap(), None);
        store
            .put_bytes(&status_key("l"), b"not json".to_vec())
            .await
            .unwrap();
        assert_eq!(verified_snapshot(&store, "l").await.unwrap(), None);
        store
            .put_bytes(&keys.snapshot(), vec![0xff, 0xfe])
            .await
            .unwrap();
        let err = read_snapshot(&store, "r1").await.unwrap_err();
        assert!(err.to_string().contains("is not text"), "{err}");
    }
}
