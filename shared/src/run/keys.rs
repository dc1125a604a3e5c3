//! Where a run's objects live in the bucket. Every key is a pure function of the run id, the round and the shard, so a
//! retried or resumed stage overwrites its own objects instead of adding new ones.

/// Object keys of one run (`runs/<runId>/…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKeys {
    prefix: String,
}

/// The file name of a key without directory and extension: `runs/r/shards/00003.jsonl` → `00003`.
fn stem(key: &str) -> &str {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.split('.').next().unwrap_or(name)
}

impl RunKeys {
    /// Keys of run `run_id`.
    pub fn new(run_id: &str) -> RunKeys {
        RunKeys {
            prefix: format!("runs/{run_id}"),
        }
    }

    /// The prefix every run of `list` starts with (a run id starts with the list's safe name): what to list to
    /// find its runs. Another list's runs may share it (`demo` and `demo-2`): their manifests name their list.
    pub fn list_prefix(list: &str) -> String {
        format!("runs/{}-", super::safe_list_name(list))
    }

    /// `manifest.json`, written last by normalize.
    pub fn manifest(&self) -> String {
        format!("{}/manifest.json", self.prefix)
    }

    /// A file of the run named relative to its directory, as the manifest names shards (`shards/000.jsonl`).
    pub fn shard(&self, relative: &str) -> String {
        format!("{}/{relative}", self.prefix)
    }

    /// The shard of entries reconciliation found missing in round `round` (≥ 1), uploaded again.
    pub fn reupload_shard(&self, round: u32) -> String {
        format!("{}/reupload/{round:03}.jsonl", self.prefix)
    }

    /// The ledger segment of the upload of `shard_key` in `round` that started at entry `cursor`. A shard resumed
    /// after a time budget has several segments; each starts where the previous one ended.
    pub fn ledger_segment(&self, round: u32, shard_key: &str, cursor: usize) -> String {
        format!(
            "{}/ledger/{round}/{}.{cursor:09}.jsonl",
            self.prefix,
            stem(shard_key)
        )
    }

    /// The dead letters (entries CXone rejected) of the same upload segment.
    pub fn dead_letter_segment(&self, round: u32, shard_key: &str, cursor: usize) -> String {
        format!(
            "{}/dead-letters/{round}/{}.{cursor:09}.jsonl",
            self.prefix,
            stem(shard_key)
        )
    }

    /// The canary probe that ended the cooldown of `round`, read by reconcile of the same round.
    pub fn canary(&self, round: u32) -> String {
        format!("{}/canary/{round}.json", self.prefix)
    }

    /// All the run's dead letters, consolidated by reconcile.
    pub fn dead_letters(&self) -> String {
        format!("{}/dead-letters.jsonl", self.prefix)
    }

    /// `runs/<runId>/report.json`: the run's outcome, what statuses and `dncctl evidence` read.
    pub fn report(&self) -> String {
        format!("{}/report.json", self.prefix)
    }

    /// `runs/<runId>/report.md`: the same report for a person.
    pub fn report_markdown(&self) -> String {
        format!("{}/report.md", self.prefix)
    }

    /// `rejects.jsonl`, as normalize names it in the manifest (`rejectsKey`).
    pub fn rejects(&self) -> String {
        format!("{}/rejects.jsonl", self.prefix)
    }

    /// `report.html`: the report as a self-contained page.
    pub fn report_html(&self) -> String {
        format!("{}/report.html", self.prefix)
    }

    /// The suppression snapshot (SHA-256 of every number on the list, one a line) as verified by a successful run: what
    /// the check function answers from when CXone cannot be asked.
    pub fn snapshot(&self) -> String {
        format!("{}/snapshot.txt", self.prefix)
    }

    /// The run's capacity decision (the upload step's `CapacityDecision`), taken once before its first write.
    pub fn capacity(&self) -> String {
        format!("{}/capacity.json", self.prefix)
    }
}

/// `status/<list>/latest.json`: what campaign launches are gated on.
pub fn status_key(list: &str) -> String {
    format!("status/{list}/latest.json")
}

/// `status/<list>/lease.json`: the execution that holds the list (one run per list at a time).
pub fn lease_key(list: &str) -> String {
    format!("status/{list}/lease.json")
}

/// `status/<list>/received.txt`: every number the list was given that no verified run has shown CXone holding
/// (`run::Received`), what the check answers them with.
pub fn received_key(list: &str) -> String {
    format!("status/{list}/received.txt")
}

/// `status/<list>/operator.jsonl`: what operators did to the list's received numbers and status (`dncctl status`),
/// appended, never rewritten.
pub fn operator_log_key(list: &str) -> String {
    format!("status/{list}/operator.jsonl")
}

/// Object keys of a registry's suppression index (`registry/<name>/…`). A version is immutable; `current.json` names
/// the live one and is swapped last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryKeys {
    prefix: String,
}

impl RegistryKeys {
    /// Keys of registry `name`.
    pub fn new(name: &str) -> RegistryKeys {
        RegistryKeys {
            prefix: format!("registry/{name}"),
        }
    }

    /// `current.json`: the live version.
    pub fn current(&self) -> String {
        format!("{}/current.json", self.prefix)
    }

    /// The manifest of `version`.
    pub fn manifest(&self, version: &str) -> String {
        format!("{}/{version}/manifest.json", self.prefix)
    }

    /// The index file of area code `npa` written by `version` (later versions may carry it by reference).
    pub fn area(&self, version: &str, npa: u16) -> String {
        format!("{}/{version}/npa/{npa:03}.idx", self.prefix)
    }

    /// The rejected lines of the import or apply that made `version`.
    pub fn rejects(&self, version: &str) -> String {
        format!("{}/{version}/rejects.jsonl", self.prefix)
    }

    /// The changes of the change list of content `sha256` (number, timestamp, add or delete), written when it is
    /// applied: a list applied later but dated earlier is merged against them (a number's later change wins).
    /// Named by content, so two writers of the same list write the same object.
    pub fn change_log(&self, sha256: &str) -> String {
        format!("{}/changes/{sha256}.bin", self.prefix)
    }

    /// The raw SOAP answer of an FTC download (`name`: `changes` or `full-<NPA>`) made on `day` (UTC): written before
    /// it is decoded, because the service gives each file once a day and a fetch it counted cannot be repeated.
    pub fn download_raw(&self, day: chrono::NaiveDate, name: &str) -> String {
        format!("{}/downloads/{day}/raw/{name}.xml", self.prefix)
    }

    /// The zip decoded from [`RegistryKeys::download_raw`] once it passed its checks (CRC, line layout).
    pub fn download_file(&self, day: chrono::NaiveDate, name: &str) -> String {
        format!("{}/downloads/{day}/{name}.zip", self.prefix)
    }

    /// The last failed FTC download (written by the download workflow's catch), deleted by the next download that
    /// succeeds.
    pub fn download_failure(&self) -> String {
        format!("{}/download-failure.json", self.prefix)
    }

    /// The FTC subscription declared for the registry (`registry::Subscription`).
    pub fn subscription(&self) -> String {
        format!("{}/subscription.json", self.prefix)
    }

    /// What the FTC downloads fetched (`registry::DownloadLog`): the last full download of each area code, the last
    /// change list.
    pub fn download_log(&self) -> String {
        format!("{}/downloads.json", self.prefix)
    }

    /// The last failed import (written by the import state machine's catch), shown by the registry's status until
    /// an import succeeds.
    pub fn import_failure(&self) -> String {
        format!("{}/import-failure.json", self.prefix)
    }
}

/// `audit/<date>/<time>-<requestId>.json`: the audit record of one check.
pub fn audit_key(now: chrono::DateTime<chrono::Utc>, request_id: &str) -> String {
    format!(
        "audit/{}/{}-{request_id}.json",
        now.format("%Y-%m-%d"),
        now.format("%H%M%S%.3f")
    )
}

/// The operator's calling-hours closures (`dncctl hours closure add`; format `hours::closures::ClosuresFile`), read by
/// every check.
pub const HOURS_CLOSURES: &str = "config/hours-closures.json";

/// Where registries' files are dropped to be imported or applied: `incoming-registry/<name>/changes/…` and
/// `incoming-registry/<name>/full/<batch>/…`.
pub const REGISTRY_INCOMING: &str = "incoming-registry/";

/// The file names under `runs/<runId>/` that are evidence: what a run proves, kept four years and never deleted.
const RUN_EVIDENCE: [&str; 6] = [
    "manifest.json",
    "report.json",
    "report.md",
    "report.html",
    "rejects.jsonl",
    "dead-letters.jsonl",
];

/// The file names under `status/<list>/` that are evidence (a list's `lease.json` is not: releasing it deletes it).
const STATUS_EVIDENCE: [&str; 3] = ["latest.json", "received.txt", "operator.jsonl"];

/// Whether dncflow writes `key` as evidence, which the bucket keeps four years and locks (S3 Object Lock, when the
/// deployment turns it on): the audit records (`audit/…`), each run's manifest, reports, rejects and dead letters,
/// and each list's status, received numbers and operator log. Everything else (shards, ledgers, canaries, snapshots,
/// leases, the registry's indexes, downloads) stays deletable and is never locked. The template's bucket policy
/// denies deleting the same keys (and the source files under `incoming/`, which dncflow reads and never writes);
/// `scripts/iam.py check` holds the two lists together.
pub fn is_evidence(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    match parts.as_slice() {
        ["audit", rest @ ..] => !rest.is_empty() && !rest.iter().any(|p| p.is_empty()),
        ["runs", run, name] => !run.is_empty() && RUN_EVIDENCE.contains(name),
        ["status", list, name] => !list.is_empty() && STATUS_EVIDENCE.contains(name),
        _ => false,
    }
}

/// The version mixed into idempotency keys: the source content for the first upload; a re-upload gets keys of its
/// own, because CXone answers a replayed key with the original result even when that record is gone, so only a new
/// key can make it write again (or answer `exists`).
pub fn keys_version(source_sha256: &str, round: u32) -> String {
    if round == 0 {
        source_sha256.to_string()
    } else {
        format!("{source_sha256}:reconcile-{round}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_per_shard_round_and_cursor() {
        let k = RunKeys::new("l-abc");
        assert_eq!(k.manifest(), "runs/l-abc/manifest.json");
        assert_eq!(
            k.ledger_segment(0, "runs/l-abc/shards/00003.jsonl", 0),
            "runs/l-abc/ledger/0/00003.000000000.jsonl"
        );
        assert_eq!(
            k.ledger_segment(2, &k.reupload_shard(2), 1500),
            "runs/l-abc/ledger/2/002.000001500.jsonl"
        );
        assert_eq!(k.canary(1), "runs/l-abc/canary/1.json");
        assert_eq!(keys_version("ff", 0), "ff");
        assert_eq!(keys_version("ff", 1), "ff:reconcile-1");
        assert_eq!(status_key("fcc"), "status/fcc/latest.json");
        let r = RegistryKeys::new("national");
        assert_eq!(r.area("v1", 20), "registry/national/v1/npa/020.idx");
        assert_eq!(r.current(), "registry/national/current.json");
    }

    #[test]
    fn evidence_is_what_a_run_and_a_list_prove_and_nothing_temporary() {
        let k = RunKeys::new("demo-abc");
        let now: chrono::DateTime<chrono::Utc> = "2026-12-06T12:00:00Z".parse().unwrap();
        for key in [
            k.manifest(),
            k.report(),
            k.report_markdown(),
            k.report_html(),
            k.rejects(),
            k.dead_letters(),
            status_key("demo"),
            received_key("demo"),
            operator_log_key("demo"),
            audit_key(now, "req-1"),
        ] {
            assert!(is_evidence(&key), "{key}");
        }
        for key in [
            k.shard("shards/00003.jsonl"),
            k.reupload_shard(1),
            k.ledger_segment(0, "runs/demo-abc/shards/00003.jsonl", 0),
            k.dead_letter_segment(0, "runs/demo-abc/shards/00003.jsonl", 0),
            k.canary(0),
            k.snapshot(),
            k.capacity(),
            lease_key("demo"),
            RegistryKeys::new("national").current(),
            RegistryKeys::new("national").area("v1", 202),
            HOURS_CLOSURES.to_string(),
            "incoming/demo/file.csv".to_string(),
            "runs/report.json".to_string(),
            "runs//report.json".to_string(),
            "runs/demo-abc/sub/report.json".to_string(),
            "audit/".to_string(),
        ] {
            assert!(!is_evidence(&key), "{key}");
        }
    }
}
