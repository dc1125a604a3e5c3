//! `dncctl check`: outbound numbers checked against the lists, the registries and the calling hours.

use std::fs::File;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use dncflow::adapters::cxone::v2::ClientConfig;
use dncflow::input::ReadOptions;

use crate::{runtime, TenantArgs};

#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// CSV (or one number a line) of outbound numbers.
    file: PathBuf,
    /// The CXone tenant (without one, only the registries are consulted).
    #[command(flatten)]
    tenant: TenantArgs,
    /// A registry's suppression index to consult (repeatable), as `dncctl registry import` built it.
    #[arg(long = "registry")]
    registries: Vec<String>,
    /// Where the registries live: the output root of `dncctl registry import`, or s3://bucket.
    #[arg(long, default_value = "out")]
    out_dir: String,
    /// Lists to check (repeatable; default: every list a rule applies). Through the Admin API (no batch check) these
    /// are list names, answered from their verified runs under OUT_DIR.
    #[arg(long = "list-id")]
    list_ids: Vec<String>,
    /// Lists whose received numbers and verified runs under OUT_DIR answer locally (repeatable; default: every list
    /// with a status or received numbers under OUT_DIR). A number a list was given and CXone is not known to hold is
    /// `suppressed` with the reason; a list named without a status makes the check incomplete.
    #[arg(long = "list")]
    lists: Vec<String>,
    /// Snapshot of known-suppressed numbers (SHA-256 hex of E.164, one a line) answered without a call.
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// Where to write the annotated CSV (default: standard output).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The instant calling hours are judged at, RFC 3339 (default: now), e.g. 2026-12-06T13:00:00Z.
    #[arg(long)]
    at: Option<chrono::DateTime<chrono::Utc>>,
    /// The kind of call: live, autodialed or prerecorded (some states' windows differ by kind; default: the strictest
    /// of every kind's rules).
    #[arg(long)]
    call_type: Option<dncflow::hours::CallType>,
    /// A calling-hours policy file (default: the embedded shared/data/calling_hours.json).
    #[arg(long)]
    policy: Option<PathBuf>,
}

pub(crate) fn check_file(args: CheckArgs) -> Result<()> {
    use dncflow::steps::check::{
        check_with, CheckRequest, ContactIn, LocalAnswers, SuppressionSnapshot,
    };
    let CheckArgs {
        file,
        tenant,
        registries,
        out_dir,
        list_ids,
        lists,
        snapshot,
        out,
        at,
        policy,
        call_type,
    } = args;
    if !tenant.given() && registries.is_empty() {
        bail!(
            "nothing to check against: give --endpoint (a CXone tenant), --registry NAME, or both"
        );
    }
    let policy = policy
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            dncflow::hours::Policy::from_json(&text).with_context(|| format!("{}", p.display()))
        })
        .transpose()?;
    use dncflow::input::{decode::for_each_part, read_rows, RowEvent};
    let mut contacts = Vec::new();
    let mut lines = Vec::new();
    let name = file.display().to_string();
    let raw = File::open(&file).with_context(|| format!("cannot open {name}"))?;
    for_each_part(&name, Box::new(raw), |part| {
        read_rows(&name, part.reader, &ReadOptions::default(), |event| {
            if let RowEvent::Row {
                line, phone, state, ..
            } = event
            {
                contacts.push(ContactIn {
                    phone_number: String::from_utf8_lossy(phone).trim().to_string(),
                    region_code: None,
                    // The address state's calling hours and zones apply as well as the area code's.
                    state: state.map(|s| String::from_utf8_lossy(s).trim().to_string()),
                });
                lines.push(line);
            }
        })?;
        Ok(())
    })?;
    let snapshot = match snapshot {
        Some(p) => {
            let (snap, bad) = SuppressionSnapshot::from_lines(
                &std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?,
            );
            if bad > 0 {
                eprintln!("warning: {bad} malformed snapshot lines ignored");
            }
            snap
        }
        None => SuppressionSnapshot::default(),
    };
    let response = runtime()?.block_on(async {
        let api = match tenant.given() {
            true => Some(tenant.client(ClientConfig::default()).await?),
            false => None,
        };
        let api = api.as_deref();
        let store = crate::registry::store_of(&out_dir, None).await?;
        // The operator's closures under OUT_DIR (`dncctl hours closure add`); an unusable document is an error here.
        let closures = dncflow::hours::closures::LoadedClosures::from_bytes(
            store
                .get_bytes(dncflow::run::HOURS_CLOSURES)
                .await
                .context("reading the hours closures")?
                .as_deref(),
            policy
                .as_ref()
                .unwrap_or_else(|| dncflow::hours::Policy::embedded()),
        )
        .context("the hours closures")?;
        let registries = dncflow::steps::refresh_registries(store.as_ref(), &registries, &[])
            .await
            .context("loading the registries")?;
        let request = CheckRequest {
            contacts,
            list_ids: (!list_ids.is_empty()).then_some(list_ids),
            at,
            call_type,
        };
        let admin = api.is_some_and(|a| !a.capabilities().batch_check);
        // The lists answered locally: named, or (through the Admin API) the lists asked for, or every list OUT_DIR
        // holds a status or received numbers of.
        let mut names = lists;
        if admin {
            for id in request.list_ids.iter().flatten() {
                if !names.contains(id) {
                    names.push(id.clone());
                }
            }
        }
        if names.is_empty() {
            names = lists_in(store.as_ref()).await?;
        }
        let mut knowledge = dncflow::steps::load_local_knowledge(store.as_ref(), &names).await?;
        if admin && names.is_empty() {
            knowledge.incomplete =
                Some("no list named (--list-id NAME) to answer from its verified runs".into());
        }
        let snapshot_given = !snapshot.is_empty();
        let answers = knowledge.answers_for(api, chrono::Utc::now(), request.list_ids.as_deref());
        let local = LocalAnswers {
            snapshot: if snapshot_given {
                &snapshot
            } else {
                answers.snapshot
            },
            hours: policy.as_ref(),
            closures: Some(&closures),
            registries: &registries,
            ..answers
        };
        let mut response = check_with(api, &request, local, 4).await;
        response.metrics.lists_without_status = knowledge.lists_without_status.len();
        anyhow::Ok(response)
    })?;
    let mut csv = String::from(
        "line,input,phoneNumber,status,reason,listMatches,callableNow,nextCallableAt,timeZone\n",
    );
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    for (line, r) in lines.iter().zip(&response.results) {
        let status = serde_json::to_value(r.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        csv += &format!(
            "{line},{},{},{status},{},{},{},{},{}\n",
            quote(&r.input),
            r.phone_number.as_deref().unwrap_or(""),
            quote(&r.reason),
            quote(&r.list_matches.join(" ")),
            r.callable_now,
            r.next_callable_at
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
            quote(
                &r.time_zones
                    .iter()
                    .map(|z| z.name())
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        );
    }
    match out {
        Some(p) => {
            std::fs::write(&p, csv).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => print!("{csv}"),
    }
    let m = &response.metrics;
    eprintln!(
        "checked {}: {} suppressed, {} allowed, {} invalid, {} errors ({} CXone calls, {} from the snapshot); suppression rate {:.1} %",
        m.total, m.suppressed, m.allowed, m.invalid, m.errors, m.cxone_calls, m.prefiltered, m.suppression_rate * 100.0
    );
    for r in &response.registries {
        eprintln!(
            "registry {} version {} as of {}: {} ({} numbers suppressed by registries, {} errors for staleness, {} for area codes not covered{}{})",
            r.registry,
            r.version,
            r.as_of.format("%Y-%m-%d"),
            r.status,
            m.registry_suppressed,
            m.registry_stale,
            m.registry_not_covering,
            if r.gap_days > 0 { format!("; {} days without a change list", r.gap_days) } else { String::new() },
            if r.missing_area_codes > 0 { format!("; {} declared area codes missing", r.missing_area_codes) } else { String::new() },
        );
    }
    eprintln!(
        "calling hours at {}: {} numbers outside them now (policy {})",
        response
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        m.outside_calling_hours,
        response.hours_policy
    );
    if m.lists_without_status > 0 || m.received_not_held > 0 || m.dead_letters > 0 {
        eprintln!(
            "received and not known held by CXone: {} pending propagation, {} dead letters, {} of failed runs or refused files; {} lists without a status",
            m.pending_propagation, m.dead_letters, m.received_not_held, m.lists_without_status
        );
    }
    if !response.complete {
        bail!(
            "{} numbers could not be checked: the batch is NOT safe to dial in full",
            m.errors
        );
    }
    Ok(())
}

/// Every list `store` holds a status or received numbers of (`status/<list>/…`).
async fn lists_in(store: &dyn dncflow::adapters::store::ObjectStore) -> Result<Vec<String>> {
    let mut names: Vec<String> = store
        .list("status/")
        .await?
        .iter()
        .filter(|k| k.ends_with("/latest.json") || k.ends_with("/received.txt"))
        .filter_map(|k| {
            k.strip_prefix("status/")?
                .split('/')
                .next()
                .map(str::to_string)
        })
        .collect();
    names.dedup();
    Ok(names)
}
