//! The mission's steps, one module each, as library functions: the Lambda binaries under `functions/` call them
//! through `dncflow_lambda::functions` (the `lambda/` crate), and `dncctl run` through the local driver (`local`).
//!
//! Each step reads what it needs from the run's objects in the bucket (through [`ObjectStore`]) and hands the state
//! machine a small payload of keys and counts, never entries: state payloads stay far below 256 KB, and phone numbers
//! never enter the execution history. A step's pure logic sits beside it (`<step>/logic.rs`), unit-tested without
//! I/O or against the [`DncApi`] boundary only. Every step fails with one [`StepError`], whose [`ErrorKind`] is what
//! the state machine matches.
//!
//! A step imports `run/` (the documents of a run and of a list, with their reading and writing), the adapters and
//! the domain modules, this module's shared items (the run reference, the CXone list lookup, the canary probe, the
//! status announcement) and `error` (the one error type), never another step: what two steps share is a document
//! (in `run/`) or an item here. `a_step_imports_no_other_step` (below) holds every step to it.

pub mod check;
pub mod cooldown;
mod error;
pub mod ftc_download;
pub mod lease;
pub mod normalize;
pub mod reconcile;
pub mod record_failure;
pub mod registry;
pub mod upload;

pub use check::{
    check_stage, closures_from, knowledge_markers, load_closures, load_local_knowledge,
    refresh_registries, LocalKnowledge, Webhook, VERIFIED_MAX_AGE,
};
pub use cooldown::{cooldown_stage, CooldownOutput, CooldownSettings, CooldownTask};
pub use error::{ErrorKind, PipelineError, StepError};
pub use lease::{
    acquire_lease, decide_lease, read_lease, release_lease, HolderState, Lease, LeaseDecision,
    LeaseOutcome, LeaseTask, Takeover, LEASE_TTL_SECS, LEASE_WAIT_SECS,
};
pub use normalize::{normalize_object, NormalizeOutput};
pub use reconcile::{reconcile_stage, ReconcileOutput, ReconcileTask};
pub use record_failure::{record_failure, FailureRecorded};
// The list's status and a run's ledger, where callers of the steps have always found them.
pub use crate::run::ledger::read_run_ledger;
pub use crate::run::status::{
    clear_failure, mark_running, next_status, read_list_status, remove_received, RemovalTarget,
};
pub use upload::{
    upload_stage, CapacityDecision, ShardTask, UploadOutput, UploadSettings, CXONE_CAPACITY,
};

use serde::{Deserialize, Serialize};

use crate::adapters::cxone::{CxoneError, DncApi};
use crate::adapters::eventbridge::StatusNotifier;
use crate::adapters::store::ObjectStore;
use crate::run::canary::CanaryProbe;
use crate::run::{ListStatus, RunKeys, RunReport};

/// A run in the bucket: what every stage after normalize is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRef {
    /// Bucket holding `runs/<runId>/`.
    pub bucket: String,
    /// The run id (`runs/<runId>/`).
    pub run_id: String,
    /// List name (CXone list names are unique).
    pub list: String,
}

impl RunRef {
    /// The run's object keys.
    pub fn keys(&self) -> RunKeys {
        RunKeys::new(&self.run_id)
    }
}

/// Read and parse a JSON object of the run; a missing object is a [`StepError::Fatal`] naming it (a stage ran
/// out of order or the bucket was tampered with).
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<T, StepError> {
    let bytes = store
        .get_bytes(key)
        .await?
        .ok_or_else(|| StepError::new(ErrorKind::Fatal, format!("{key} does not exist")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        StepError::new(
            ErrorKind::Fatal,
            format!("{key} is unreadable: {}", crate::redact::json_error(&e)),
        )
    })
}

/// Find the CXone list by name; a missing list is [`StepError::NotSuppressing`] (nothing written could apply).
pub(crate) async fn resolve_list(
    api: &dyn DncApi,
    name: &str,
) -> Result<crate::adapters::cxone::DncList, StepError> {
    api.find_list(name)
        .await
        .map_err(StepError::from)?
        .ok_or_else(|| {
            StepError::from(PipelineError::ListNotFound {
                list: name.to_string(),
            })
        })
}

/// Probe the canary numbers: does CXone answer each suppressed by `list_id`? The cooldown probes a sample of what a
/// round wrote; reconcile probes again what the cooldown handed over. An answer that does not pair one verdict with
/// each number is a protocol error, never a silent pairing.
pub async fn probe_canary(
    api: &dyn DncApi,
    list_id: &str,
    numbers: &[String],
) -> Result<CanaryProbe, PipelineError> {
    let suppressed = api.probe(list_id, numbers).await?;
    if suppressed.len() != numbers.len() {
        return Err(PipelineError::from(CxoneError::Protocol {
            op: "canary probe",
            message: format!("{} answers for {} numbers", suppressed.len(), numbers.len()),
        }));
    }
    Ok(CanaryProbe::from_answers(numbers, &suppressed))
}

/// End a run: write its report and the list's status (`run::status::publish_status`, keeping the last known good run
/// across failures), then announce the status. Reconcile and the failure recorder end runs.
pub async fn publish_list_status(
    store: &dyn ObjectStore,
    notifier: &dyn StatusNotifier,
    report: &RunReport,
) -> Result<ListStatus, StepError> {
    let status = crate::run::status::publish_status(store, report).await?;
    notifier.notify(&status).await?;
    tracing::info!(list = %status.list, status = %status.status, run_id = %status.run_id,
        reason = status.reason.as_deref().unwrap_or(""), "status published");
    Ok(status)
}

/// The layering, checked on the source: a step imports no other step (see this module's documentation), and `run/`
/// depends on no service adapter and on no step. Every path a file names is read with `syn` (`use` trees, paths in
/// code and types, and paths written inside macro calls) and made absolute from the file's module.
#[cfg(test)]
mod layering {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use syn::visit::Visit;

    /// The crate's `src` directory.
    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    /// Every `.rs` file under `dir`, with its module path (`steps/upload/logic.rs` → `steps::upload::logic`).
    fn modules(dir: &Path, module: Vec<String>, out: &mut Vec<(PathBuf, Vec<String>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                let mut m = module.clone();
                m.push(name);
                modules(&path, m, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut m = module.clone();
                if name != "mod" {
                    m.push(name);
                }
                out.push((path, m));
            }
        }
    }

    /// The absolute paths (from the crate root) a file names.
    struct Paths {
        module: Vec<String>,
        found: Vec<Vec<String>>,
    }

    impl Paths {
        /// `segments` made absolute: `crate::…`, `super::…` and `self::…` resolved; other paths (a name in scope, an
        /// outside crate) are not the crate's modules and are left out.
        fn add(&mut self, segments: &[String]) {
            let mut abs = self.module.clone();
            let mut rest = segments;
            match segments.first().map(String::as_str) {
                Some("crate") => {
                    abs.clear();
                    rest = &segments[1..];
                }
                Some("self") => rest = &segments[1..],
                Some("super") => {
                    while rest.first().is_some_and(|s| s == "super") {
                        abs.pop();
                        rest = &rest[1..];
                    }
                }
                _ => return,
            }
            abs.extend(rest.iter().cloned());
            self.found.push(abs);
        }

        fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
            match tree {
                syn::UseTree::Path(p) => {
                    prefix.push(p.ident.to_string());
                    self.use_tree(prefix, &p.tree);
                    prefix.pop();
                }
                syn::UseTree::Name(n) => self.leaf(prefix, n.ident.to_string()),
                syn::UseTree::Rename(r) => self.leaf(prefix, r.ident.to_string()),
                syn::UseTree::Glob(_) => self.leaf(prefix, "*".into()),
                syn::UseTree::Group(g) => {
                    for t in &g.items {
                        self.use_tree(prefix, t);
                    }
                }
            }
        }

        fn leaf(&mut self, prefix: &[String], name: String) {
            let mut p = prefix.to_vec();
            // `use super::x::{self}` names `super::x`.
            if name != "self" {
                p.push(name);
            }
            self.add(&p);
        }
    }

    impl<'ast> Visit<'ast> for Paths {
        fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
            self.use_tree(&mut Vec::new(), &u.tree);
        }

        fn visit_path(&mut self, p: &'ast syn::Path) {
            let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
            self.add(&segments);
            syn::visit::visit_path(self, p);
        }

        fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
            self.module.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.module.pop();
        }

        /// Paths inside a macro call (`tracing::info!(… crate::x::y …)`) are tokens, not syntax: read as
        /// `a :: b :: c` runs of identifiers.
        fn visit_macro(&mut self, m: &'ast syn::Macro) {
            let text = m.tokens.to_string();
            let words: Vec<&str> = text.split_whitespace().collect();
            let mut i = 0;
            while i < words.len() {
                let ident = |w: &str| w.chars().all(|c| c.is_alphanumeric() || c == '_');
                if ident(words[i]) && words.get(i + 1) == Some(&"::") {
                    let mut run = vec![words[i].to_string()];
                    let mut j = i + 1;
                    while words.get(j) == Some(&"::") && words.get(j + 1).is_some_and(|w| ident(w))
                    {
                        run.push(words[j + 1].to_string());
                        j += 2;
                    }
                    self.add(&run);
                    i = j;
                } else {
                    i += 1;
                }
            }
            syn::visit::visit_macro(self, m);
        }
    }

    /// The absolute paths `file` (module `module`) names.
    fn paths_of(file: &Path, module: &[String]) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(file).unwrap();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut paths = Paths {
            module: module.to_vec(),
            found: Vec::new(),
        };
        paths.visit_file(&ast);
        paths.found
    }

    /// Every use of one step by another: the step's modules, and the step's items re-exported by `steps/mod.rs`.
    fn cross_step_uses(src: &Path) -> Vec<String> {
        let root =
            syn::parse_file(&std::fs::read_to_string(src.join("steps/mod.rs")).unwrap()).unwrap();
        // The steps: every module of `steps/` but `error`, the shared error type.
        let steps: Vec<String> = root
            .items
            .iter()
            .filter_map(|i| match i {
                // Declared modules (`pub mod upload;`), not inline ones (this test).
                syn::Item::Mod(m) if m.content.is_none() => Some(m.ident.to_string()),
                _ => None,
            })
            .filter(|m| m != "error")
            .collect();
        // What `steps/mod.rs` re-exports of each step (`pub use upload::{upload_stage, …}`).
        let mut owner: BTreeMap<String, String> = BTreeMap::new();
        for item in &root.items {
            if let syn::Item::Use(u) = item {
                let mut p = Paths {
                    module: vec!["steps".into()],
                    found: Vec::new(),
                };
                // Re-exports are relative (`upload::…`): read them as `self::upload::…`.
                p.use_tree(&mut vec!["self".to_string()], &u.tree);
                for path in p.found {
                    if let [_, step, .., name] = path.as_slice() {
                        if steps.contains(step) {
                            owner.insert(name.clone(), step.clone());
                        }
                    }
                }
            }
        }
        let mut files = Vec::new();
        modules(&src.join("steps"), vec!["steps".into()], &mut files);
        let mut uses = Vec::new();
        for (file, module) in files {
            // `steps/mod.rs` and `steps/error.rs` are what every step shares.
            let Some(own) = module.get(1).filter(|m| steps.contains(m)) else {
                continue;
            };
            for path in paths_of(&file, &module) {
                let [first, second, ..] = path.as_slice() else {
                    continue;
                };
                if first != "steps" {
                    continue;
                }
                let other = if steps.contains(second) {
                    Some(second.clone())
                } else if second == "*" {
                    Some("every step (a glob)".to_string())
                } else {
                    owner.get(second).cloned()
                };
                if let Some(other) = other.filter(|o| o != own) {
                    uses.push(format!(
                        "{} (step {own}) uses {} of step {other}",
                        file.strip_prefix(src).unwrap().display(),
                        path.join("::")
                    ));
                }
            }
        }
        uses.sort();
        uses.dedup();
        uses
    }

    #[test]
    fn a_step_imports_no_other_step() {
        let uses = cross_step_uses(&src());
        assert!(
            uses.is_empty(),
            "a step imports another step (share a document in run/, or an item in steps/mod.rs):\n{}",
            uses.join("\n")
        );
    }

    #[test]
    fn run_depends_on_no_service_adapter_and_no_step() {
        let mut files = Vec::new();
        modules(&src().join("run"), vec!["run".into()], &mut files);
        let mut uses = Vec::new();
        for (file, module) in files {
            for path in paths_of(&file, &module) {
                let bad = match path.first().map(String::as_str) {
                    Some("steps") => true,
                    // The store is how documents are read and written; no other adapter.
                    Some("adapters") => path.get(1).is_some_and(|a| a != "store"),
                    _ => false,
                };
                if bad {
                    uses.push(format!("{} uses {}", file.display(), path.join("::")));
                }
            }
        }
        assert!(uses.is_empty(), "{}", uses.join("\n"));
    }

    /// The scanner sees each form an import between steps can take.
    #[test]
    fn the_scanner_sees_every_form_of_import() {
        let dir = tempfile::tempdir().unwrap();
        let steps = dir.path().join("steps");
        std::fs::create_dir_all(steps.join("a")).unwrap();
        std::fs::write(
            steps.join("mod.rs"),
            "mod error; pub mod a; pub mod b; pub mod c; pub use b::shared_b; pub use error::E;",
        )
        .unwrap();
        std::fs::write(steps.join("error.rs"), "pub struct E;").unwrap();
        std::fs::write(
            steps.join("a/mod.rs"),
            "mod logic; use super::{E, b::one}; use crate::steps::c; fn f() { super::shared_b(); }",
        )
        .unwrap();
        std::fs::write(
            steps.join("a/logic.rs"),
            "use super::super::c::two; fn g() { tracing::info!(x = %crate::steps::b::three()); }",
        )
        .unwrap();
        std::fs::write(steps.join("b.rs"), "use super::E; pub fn shared_b() {}").unwrap();
        std::fs::write(steps.join("c.rs"), "mod t { use super::*; }").unwrap();
        let uses = cross_step_uses(dir.path());
        let expected = [
            "steps/a/logic.rs (step a) uses steps::b::three of step b",
            "steps/a/logic.rs (step a) uses steps::c::two of step c",
            "steps/a/mod.rs (step a) uses steps::b::one of step b",
            "steps/a/mod.rs (step a) uses steps::c of step c",
            "steps/a/mod.rs (step a) uses steps::shared_b of step b",
        ];
        assert_eq!(uses, expected);
    }
}
