//! `dncctl check`: outbound numbers checked against the lists, the registries and the calling hours.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use dncflow::adapters::cxone::v2::ClientConfig;
use dncflow::input::ReadOptions;
use dncflow::steps::check::Verdict;
use indicatif::{ProgressBar, ProgressStyle};

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

/// Numbers checked at a time: a check holds this many rows, whatever the file's length, and CXone is asked about each
/// batch as it comes.
const BATCH: usize = 16_384;

/// One line of the output, in input order: a number to check, or a row that could not be read (answered `invalid`
/// with the reason, never left out). Text lives in the batch's one buffer ([`Batch::text`]), as byte ranges.
enum Item {
    Contact {
        line: u64,
        phone: std::ops::Range<usize>,
        state: Option<std::ops::Range<usize>>,
    },
    Problem {
        line: u64,
        code: &'static str,
        raw: std::ops::Range<usize>,
    },
}

/// The rows of one batch: their text in one buffer, reused from batch to batch, so reading a row allocates nothing.
#[derive(Default)]
struct Batch {
    text: String,
    items: Vec<Item>,
}

impl Batch {
    /// `bytes` (as UTF-8, invalid sequences replaced) appended to the buffer, trimmed; its range.
    fn push_text(&mut self, bytes: &[u8]) -> std::ops::Range<usize> {
        self.push(bytes, true)
    }

    fn push(&mut self, bytes: &[u8], trim: bool) -> std::ops::Range<usize> {
        let text = String::from_utf8_lossy(bytes);
        let text = if trim { text.trim() } else { &text };
        let start = self.text.len();
        self.text.push_str(text);
        start..self.text.len()
    }

    fn clear(&mut self) {
        self.text.clear();
        self.items.clear();
    }
}

pub(crate) fn check_file(args: CheckArgs) -> Result<()> {
    use dncflow::steps::check::{
        judge, CheckMetrics, ContactRef, JudgeOptions, LocalAnswers, SuppressionSnapshot,
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
    // One instant for the whole file: every batch is judged at the same time.
    let at = at.unwrap_or_else(chrono::Utc::now);
    let list_ids = (!list_ids.is_empty()).then_some(list_ids);
    let rt = runtime()?;
    // What the check consults, loaded once: the tenant, the closures, the registries, the lists' knowledge.
    let (api, closures, registries, knowledge) = rt.block_on(async {
        let api = match tenant.given() {
            true => Some(tenant.client(ClientConfig::default()).await?),
            false => None,
        };
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
        let admin = api
            .as_deref()
            .is_some_and(|a| !a.capabilities().batch_check);
        // The lists answered locally: named, or (through the Admin API) the lists asked for, or every list OUT_DIR
        // holds a status or received numbers of.
        let mut names = lists;
        if admin {
            for id in list_ids.iter().flatten() {
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
        anyhow::Ok((api, closures, registries, knowledge))
    })?;
    let api = api.as_deref();
    let answers = knowledge.answers_for(api, chrono::Utc::now(), list_ids.as_deref());
    let local = LocalAnswers {
        snapshot: if snapshot.is_empty() {
            answers.snapshot
        } else {
            &snapshot
        },
        hours: policy.as_ref(),
        closures: Some(&closures),
        registries: &registries,
        ..answers
    };

    // Written to OUT.partial and renamed when every row is written: a file named OUT is always whole.
    let partial = out.as_ref().map(|p| {
        let mut name = p.clone().into_os_string();
        name.push(".partial");
        PathBuf::from(name)
    });
    let mut sink: Box<dyn Write> = match &partial {
        Some(p) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout().lock())),
    };
    sink.write_all(
        b"line,input,phoneNumber,status,reason,listMatches,callableNow,nextCallableAt,timeZone\n",
    )?;
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {human_pos} numbers checked ({per_sec})")
                .expect("a valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut totals = CheckMetrics::default();
    let mut first: Option<dncflow::steps::check::CheckResponse> = None;
    let mut complete = true;
    let mut batch = Batch::default();
    let options = JudgeOptions {
        list_ids: list_ids.as_deref(),
        at: Some(at),
        call_type,
    };
    // Check the batch, write its lines in input order, keep the totals.
    // A batch's lines are formatted into one buffer and written at once: per-row writes through the boxed sink and
    // `write!`'s formatting machinery were a measurable share of the bulk check's time.
    let mut lines: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut run_batch = |batch: &mut Batch| -> Result<()> {
        let contacts: Vec<ContactRef<'_>> = batch
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Contact { phone, state, .. } => Some(ContactRef {
                    phone_number: &batch.text[phone.clone()],
                    region_code: None,
                    state: state.clone().map(|s| &batch.text[s]),
                }),
                Item::Problem { .. } => None,
            })
            .collect();
        let verdicts = rt.block_on(judge(api, &contacts, options, local.clone(), 4));
        let hours = HoursText::of(&verdicts.hours);
        let mut rows = verdicts.rows.iter().zip(&contacts);
        for item in &batch.items {
            match item {
                Item::Contact { line, .. } => {
                    let (row, contact) = rows.next().expect("one verdict per contact");
                    write_row(&mut lines, *line, contact, row, &verdicts, &hours);
                }
                Item::Problem { line, code, raw } => {
                    totals.total += 1;
                    totals.invalid += 1;
                    write!(lines, "{line},")?;
                    write_quoted(&mut lines, &batch.text[raw.clone()]);
                    writeln!(lines, ",,invalid,\"{code}\",\"\",false,,\"\"")?;
                }
            }
        }
        sink.write_all(&lines)?;
        lines.clear();
        totals.add(&verdicts.summary.metrics);
        complete &= verdicts.summary.complete;
        progress.inc(contacts.len() as u64);
        first.get_or_insert(verdicts.summary);
        batch.clear();
        Ok(())
    };

    use dncflow::input::{decode::for_each_part, read_rows, RowEvent};
    let name = file.display().to_string();
    let raw = File::open(&file).with_context(|| format!("cannot open {name}"))?;
    let mut failed: Option<anyhow::Error> = None;
    let mut batches_run = 0usize;
    for_each_part(&name, Box::new(raw), |part| {
        read_rows(&name, part.reader, &ReadOptions::default(), |event| {
            if failed.is_some() {
                return;
            }
            match event {
                RowEvent::Row {
                    line, phone, state, ..
                } => {
                    let phone = batch.push_text(phone);
                    // The address state's calling hours and zones apply as well as the area code's.
                    let state = state.map(|s| batch.push_text(s));
                    batch.items.push(Item::Contact { line, phone, state });
                }
                RowEvent::Problem { line, problem, raw } => {
                    // The row as written (its start, for a line over the limit), for the reader to find it.
                    let cut = raw.len().min(480);
                    let range = batch.push(&raw[..cut], false);
                    let end = batch.text[range.clone()]
                        .char_indices()
                        .nth(120)
                        .map_or(range.end, |(i, _)| range.start + i);
                    batch.items.push(Item::Problem {
                        line,
                        code: problem.code(),
                        raw: range.start..end,
                    })
                }
                _ => return,
            }
            if batch.items.len() >= BATCH {
                batches_run += 1;
                if let Err(e) = run_batch(&mut batch) {
                    failed = Some(e);
                }
            }
        })?;
        Ok(())
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    // The last batch; an empty one for an empty file (the summary still names the registries and the hours).
    if !batch.items.is_empty() || batches_run == 0 {
        run_batch(&mut batch)?;
    }
    progress.finish_and_clear();
    sink.flush()?;
    drop(sink);
    if let (Some(partial), Some(out)) = (&partial, &out) {
        std::fs::rename(partial, out)
            .with_context(|| format!("cannot rename {} to {}", partial.display(), out.display()))?;
    }
    let response = first.expect("one batch at least");
    let m = &mut totals;
    let checkable = m.total - m.invalid;
    m.suppression_rate = if checkable == 0 {
        0.0
    } else {
        m.suppressed as f64 / checkable as f64
    };
    m.lists_without_status = knowledge.lists_without_status.len();
    let m = &totals;
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
    if !complete || m.errors > 0 {
        bail!(
            "{} numbers could not be checked: the batch is NOT safe to dial in full",
            m.errors
        );
    }
    Ok(())
}

/// Text as a quoted CSV field.
fn write_quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// Text inside a quoted CSV field: its quotes doubled.
fn write_escaped(out: &mut Vec<u8>, s: &str) {
    let mut parts = s.split('"');
    out.extend_from_slice(parts.next().unwrap_or("").as_bytes());
    for part in parts {
        out.extend_from_slice(b"\"\"");
        out.extend_from_slice(part.as_bytes());
    }
}

/// The calling hours of a batch's places as the CSV writes them, formatted once per place.
struct HoursText {
    next_callable_at: Vec<String>,
    time_zones: Vec<String>,
}

impl HoursText {
    fn of(hours: &[dncflow::steps::check::PlaceHours]) -> HoursText {
        HoursText {
            next_callable_at: hours
                .iter()
                .map(|h| {
                    h.next_callable_at.map_or(String::new(), |t| {
                        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    })
                })
                .collect(),
            time_zones: hours
                .iter()
                .map(|h| {
                    h.time_zones
                        .iter()
                        .map(|z| z.name())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect(),
        }
    }
}

/// One row's verdict as a CSV line (the text fields quoted, quotes doubled), appended to the batch's buffer.
fn write_row(
    out: &mut Vec<u8>,
    line: u64,
    contact: &dncflow::steps::check::ContactRef<'_>,
    row: &dncflow::steps::check::RowVerdict,
    verdicts: &dncflow::steps::check::Verdicts,
    hours: &HoursText,
) {
    use dncflow::steps::check::{clip_str, RowVerdict, MAX_INPUT_ECHO};
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(digits.format(line).as_bytes());
    out.push(b',');
    write_quoted(out, &clip_str(contact.phone_number, MAX_INPUT_ECHO));
    match *row {
        RowVerdict::Invalid(code) => {
            out.extend_from_slice(b",,invalid,\"");
            out.extend_from_slice(code.as_bytes());
            out.extend_from_slice(b"\",\"\",false,,\"\"\n");
        }
        RowVerdict::Number { number, hours: h } => {
            let n = &verdicts.numbers[number as usize];
            let status: &[u8] = match n.status {
                Verdict::Suppressed => b"suppressed",
                Verdict::Allowed => b"allowed",
                Verdict::Invalid => b"invalid",
                Verdict::Error => b"error",
            };
            // E.164 as its Display writes it: `+` and the packed digits.
            out.extend_from_slice(b",+");
            out.extend_from_slice(digits.format(n.number.packed()).as_bytes());
            out.push(b',');
            out.extend_from_slice(status);
            out.push(b',');
            write_quoted(out, &n.reason);
            out.extend_from_slice(b",\"");
            for (i, list) in n.list_matches.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_escaped(out, list);
            }
            let h = h as usize;
            out.extend_from_slice(b"\",");
            out.extend_from_slice(if verdicts.hours[h].callable_now {
                b"true"
            } else {
                b"false"
            });
            out.push(b',');
            out.extend_from_slice(hours.next_callable_at[h].as_bytes());
            out.extend_from_slice(b",\"");
            out.extend_from_slice(hours.time_zones[h].as_bytes());
            out.extend_from_slice(b"\"\n");
        }
    }
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
