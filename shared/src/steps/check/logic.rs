//! Outbound protection: check numbers against the DNC lists before they are dialed.
//!
//! Fail-safe: a number whose check could not be completed is `error`, never `allowed`, and the response says the
//! batch is not safe to dial in full. The same normalizer as ingestion reads the numbers. Numbers known suppressed
//! from the latest reconciled snapshot (SHA-256 hashes of E.164 numbers) are answered without a call; numbers of a
//! run that has not reached SUCCESS yet are answered suppressed (`pending-propagation`): CXone may not show them yet.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::adapters::cxone::{CheckStatus, ContactQuery, DncApi, MAX_CONTACTS_PER_REQUEST};
use crate::hours::closures::LoadedClosures;
use crate::hours::{CallType, PlaceKey, Policy, Window};
use crate::phone::{DefaultRegion, Normalizer, E164};
use crate::registry::{Freshness, LoadedRegistry, Lookup};
// The snapshot is a run's document (`run::snapshot`); the check answers from it, and names it in its signatures.
pub use crate::run::snapshot::{number_hash, SuppressionSnapshot};

/// One number to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactIn {
    /// As the campaign holds it.
    pub phone_number: String,
    /// Region for numbers without a country code (default US).
    #[serde(default)]
    pub region_code: Option<String>,
    /// The contact's address state (`FL`, `US-FL`, `ON`), when known: its calling hours apply as well as those of
    /// the number's area code.
    #[serde(
        default,
        alias = "addressState",
        skip_serializing_if = "Option::is_none"
    )]
    pub state: Option<String>,
}

/// A check request: the check Lambda's input, and what `dncctl check` builds from a campaign file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckRequest {
    /// The numbers to check, in the order the answers come back.
    pub contacts: Vec<ContactIn>,
    /// Lists to check (default: every list a rule applies).
    #[serde(default)]
    pub list_ids: Option<Vec<String>>,
    /// The instant calling hours are judged at (default: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// The kind of call (`live`, `autodialed`, `prerecorded`): some states' windows differ by kind. Not said: the
    /// strictest of every kind's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_type: Option<CallType>,
}

/// The most contacts one check request may carry. Sized so the answer fits the Lambda Function URL's response
/// limit ([`RESPONSE_LIMIT_BYTES`], 6 MB): the largest answer per contact (the input echo clipped to
/// [`MAX_INPUT_ECHO`] characters and a reason clipped to [`MAX_REASON`], both made of control characters, which JSON
/// escapes to six bytes and the Function URL's envelope to seven; four list matches, two candidate zones, a window,
/// the next callable instant) is 2,307 bytes, 5.8 MB for 2,500 contacts (`the_largest_answer_fits_the_function_url_limit`);
/// an ordinary one is about 450 bytes. A larger request is refused (413, naming the limit) before
/// anything is checked or audited: split it.
pub const MAX_CHECK_CONTACTS: usize = 2_500;

/// A Lambda Function URL's (and a synchronous invocation's) largest response: 6 MB.
pub const RESPONSE_LIMIT_BYTES: usize = 6 * 1024 * 1024;

/// Characters of a contact's `phoneNumber` echoed back as `input` (a longer input is no phone number: it is answered
/// `invalid` and its echo ends with `…`).
pub const MAX_INPUT_ECHO: usize = 40;

/// Characters of a result's `reason` (a longer one, a CXone error message, ends with `…`).
pub const MAX_REASON: usize = 200;

/// Why `request` is refused before anything is checked: more contacts than [`MAX_CHECK_CONTACTS`].
pub fn too_many_contacts(request: &CheckRequest) -> Option<String> {
    (request.contacts.len() > MAX_CHECK_CONTACTS).then(|| {
        format!(
            "{} contacts in one check request: the limit is {MAX_CHECK_CONTACTS} (the answer must fit the Function \
             URL's 6 MB response); split the request",
            request.contacts.len()
        )
    })
}

/// `text` cut to `max` characters, `…` marking the cut.
pub fn clip(text: &str, max: usize) -> String {
    clip_str(text, max).into_owned()
}

/// [`clip`], borrowing `text` when it is short enough (the bulk path echoes every row's input).
pub fn clip_str(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    // A string of at most `max` bytes has at most `max` characters: no need to count them.
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    match text.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(text),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &text[..end])),
    }
}

/// Verdict for one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// On a list, a registry, or received and not yet verified in CXone: do not dial.
    Suppressed,
    /// On no list or registry consulted, and nothing received for it is unverified: may be dialed (calling hours are
    /// answered beside it).
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
    /// The answer: suppressed, allowed, invalid or error.
    pub status: Verdict,
    /// The code behind the verdict (`registry:national`, `dead-letter`, `pending-propagation`, `INVALID_EXCHANGE`, …).
    pub reason: String,
    /// The lists (or registries) that hold the number.
    pub list_matches: Vec<String>,
    /// Calling hours allow a call to this number at the request's instant (false for an invalid number).
    pub callable_now: bool,
    /// The calling window containing the instant, or the next one, in the called party's zone.
    pub window: Option<Window>,
    /// The first instant calling hours allow a call (UTC); `None` for an invalid number or none within 14 days.
    pub next_callable_at: Option<DateTime<Utc>>,
    /// The number's candidate time zones (several where its area code spans zones).
    pub time_zones: Vec<Tz>,
    /// Why calling hours do not allow a call now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours_reason: Option<String>,
}

/// Counts of one check call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckMetrics {
    /// Items in the request.
    pub total: usize,
    /// Numbers answered `suppressed` (by a list, a registry, or what the system received and CXone does not yet hold).
    pub suppressed: usize,
    /// Numbers answered `allowed`.
    pub allowed: usize,
    /// Items answered `invalid` (not a dialable number).
    pub invalid: usize,
    /// Numbers answered `error` (the check could not be completed: not dialable).
    pub errors: usize,
    /// Suppressed / (total − invalid).
    pub suppression_rate: f64,
    /// Wall time of the check, in milliseconds.
    pub duration_ms: u64,
    /// Distinct numbers among the items (a number asked twice is checked once).
    pub distinct: usize,
    /// Answered from the local snapshot.
    pub prefiltered: usize,
    /// Answered suppressed because a run is still propagating.
    pub pending_propagation: usize,
    /// Answered suppressed because CXone refused to hold the number (a dead letter).
    #[serde(default)]
    pub dead_letters: usize,
    /// Requests this check made to CXone.
    pub cxone_calls: usize,
    /// Valid numbers calling hours do not allow a call to at the request's instant.
    #[serde(default)]
    pub outside_calling_hours: usize,
    /// Answered suppressed because a registry (the national one, a state's) lists them.
    #[serde(default)]
    pub registry_suppressed: usize,
    /// Answered error because a registry that covers them is older than its limit.
    #[serde(default)]
    pub registry_stale: usize,
    /// Answered error because a registry answers for their area code and holds no full download of it (outside the
    /// subscription, missing from the import, or an area code newer than the numbering table).
    #[serde(default)]
    pub registry_not_covering: usize,
    /// Answered suppressed because their run failed or their file was refused (`run-failed:<runId>`,
    /// `refused-file:<runId>`): received, never shown held by CXone.
    #[serde(default)]
    pub received_not_held: usize,
    /// Lists named (in the settings or the request) that have no status: the request answers nothing `allowed`.
    #[serde(default)]
    pub lists_without_status: usize,
}

impl CheckMetrics {
    /// Adds another batch's counts to these (a file checked batch by batch). `distinct` adds up the batches' distinct
    /// numbers (a number repeated across batches counts in each); the rate and the duration are left to the caller.
    pub fn add(&mut self, o: &CheckMetrics) {
        self.total += o.total;
        self.suppressed += o.suppressed;
        self.allowed += o.allowed;
        self.invalid += o.invalid;
        self.errors += o.errors;
        self.duration_ms += o.duration_ms;
        self.distinct += o.distinct;
        self.prefiltered += o.prefiltered;
        self.pending_propagation += o.pending_propagation;
        self.dead_letters += o.dead_letters;
        self.cxone_calls += o.cxone_calls;
        self.outside_calling_hours += o.outside_calling_hours;
        self.registry_suppressed += o.registry_suppressed;
        self.registry_stale += o.registry_stale;
        self.registry_not_covering += o.registry_not_covering;
        self.received_not_held += o.received_not_held;
        self.lists_without_status = self.lists_without_status.max(o.lists_without_status);
    }
}

/// A registry consulted by a check, as the response names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryUse {
    /// The registry's name (its objects live under `registry/<name>/`).
    pub registry: String,
    /// The live version consulted (`registry/<name>/<version>/`).
    pub version: String,
    /// The instant that version is current as of.
    pub as_of: DateTime<Utc>,
    /// CURRENT, EXPIRING or STALE at the check.
    pub status: Freshness,
    /// Days no change list covers between its import and its newest list (its as-of stops before the first).
    #[serde(default)]
    pub gap_days: usize,
    /// Declared area codes it lacks (their numbers are answered `error`).
    #[serde(default)]
    pub missing_area_codes: usize,
}

/// A condition that keeps a batch from being dialed in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Blocker {
    /// A number could not be checked.
    Error,
    /// A number is on a list.
    Suppressed,
    /// A number is not dialable.
    Invalid,
    /// Calling hours do not allow a call to a number now.
    OutsideCallingHours,
}

/// The answer to a check request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResponse {
    /// One result per input item, in input order.
    pub results: Vec<CheckResult>,
    /// True only when every number is `allowed` and callable now: the batch may be dialed in full.
    pub safe_to_dial: bool,
    /// Which conditions keep the batch from being dialed in full (empty when `safe_to_dial`).
    pub blocked_by: Vec<Blocker>,
    /// Every number was checked (no `error`): the verdicts can be acted on number by number.
    pub complete: bool,
    /// The instant calling hours were judged at.
    pub at: DateTime<Utc>,
    /// The calling-hours policy's version.
    pub hours_policy: String,
    /// The version (`sha256:…`) of the operator's closures document applied, `none` when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours_closures: Option<String>,
    /// The kind of call judged (absent: not said, the strictest of every kind's rules applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours_call_type: Option<CallType>,
    /// The registries consulted, each with the version and its freshness at the check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<RegistryUse>,
    /// The tallies of the answers (the summary line and the metrics are built from them).
    pub metrics: CheckMetrics,
}

/// What is answered without asking CXone.
#[derive(Debug, Clone)]
pub struct LocalAnswers<'a> {
    /// Numbers on the lists as verified by their last successful runs: `suppressed` (`local-snapshot`).
    pub snapshot: &'a SuppressionSnapshot,
    /// Numbers of runs still uploading or propagating: `suppressed` (`pending-propagation`).
    pub propagating: &'a HashSet<String>,
    /// Numbers CXone refused to hold (dead letters of the lists' runs): `suppressed` (`dead-letter`), since no list
    /// suppresses them although they were meant to be.
    pub dead_letters: Option<&'a HashSet<String>>,
    /// Per list, every number it was given that no verified run has shown CXone holding (and whose expiration has not
    /// passed): `suppressed` with the document's reason, whatever CXone or a registry would say.
    pub received: &'a [crate::run::Received],
    /// Why what is known locally may be incomplete (loading it failed): a number CXone would answer `allowed` is then
    /// `error` instead, since a local answer may be missing for it.
    pub incomplete: Option<&'a str>,
    /// Why what is known cannot clear a number on its own when CXone has no batch check to ask (a list unverified or
    /// verified too long ago): such a number is `error`, not `allowed`.
    pub gap: Option<String>,
    /// The calling-hours policy (`None`: the embedded one).
    pub hours: Option<&'a Policy>,
    /// The operator's closures (`None`: none).
    pub closures: Option<&'a LoadedClosures>,
    /// Registries (suppression indexes): a number one lists is `suppressed` (`registry:<name>`); a number a stale one
    /// covers and does not list is `error` (`registry-stale:<name>`), since a newer copy may list it.
    pub registries: &'a [Arc<LoadedRegistry>],
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
    let local = LocalAnswers {
        snapshot,
        propagating,
        dead_letters: None,
        received: &[],
        incomplete: None,
        gap: None,
        hours: None,
        closures: None,
        registries: &[],
    };
    check_with(Some(api), request, local, concurrency).await
}

/// One number to check, borrowed from wherever the caller holds it: a file checked in bulk reads its rows into one
/// buffer per batch and checks them without an allocation per number ([`judge`]).
#[derive(Debug, Clone, Copy)]
pub struct ContactRef<'a> {
    /// As the campaign holds it.
    pub phone_number: &'a str,
    /// Region for numbers without a country code (default US).
    pub region_code: Option<&'a str>,
    /// The contact's address state, when known.
    pub state: Option<&'a str>,
}

impl<'a> From<&'a ContactIn> for ContactRef<'a> {
    fn from(c: &'a ContactIn) -> ContactRef<'a> {
        ContactRef {
            phone_number: &c.phone_number,
            region_code: c.region_code.as_deref(),
            state: c.state.as_deref(),
        }
    }
}

/// The calling-hours answer shared by every number of one place and address state in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceHours {
    /// Calling hours allow a call now.
    pub callable_now: bool,
    /// The window containing the instant, or the next one.
    pub window: Option<Window>,
    /// The first instant calling hours allow a call (UTC).
    pub next_callable_at: Option<DateTime<Utc>>,
    /// The candidate time zones.
    pub time_zones: Vec<Tz>,
    /// Why calling hours do not allow a call now.
    pub reason: Option<String>,
}

/// The verdict on one distinct number of a batch. The reason and the matches are shared (`Arc`): most numbers of a
/// campaign file carry one of a handful of reasons, and a clone costs no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberVerdict {
    /// The number, parsed.
    pub number: E164,
    /// The verdict on it.
    pub status: Verdict,
    /// The code behind it, clipped to [`MAX_REASON`] characters.
    pub reason: Arc<str>,
    /// Lists (or registries) that matched.
    pub list_matches: Arc<[String]>,
}

/// A row's answer: the verdict on its number and the calling hours of its place, or why it is not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowVerdict {
    /// A dialable number: indexes into [`Verdicts::numbers`] and [`Verdicts::hours`].
    Number {
        /// Index of its number's verdict in [`Verdicts::numbers`].
        number: u32,
        /// Its place's calling hours.
        hours: u32,
    },
    /// Not a dialable number, with the reject code (`INVALID_EXCHANGE`, …).
    Invalid(&'static str),
}

/// A batch's answers held compactly: one entry per row pointing at one verdict per distinct number and one calling-
/// hours answer per place. [`Verdicts::into_response`] spells them out as a [`CheckResponse`]; a bulk writer reads
/// them as they are.
#[derive(Debug, Clone)]
pub struct Verdicts {
    /// One per input row, in input order.
    pub rows: Vec<RowVerdict>,
    /// One per distinct number.
    pub numbers: Vec<NumberVerdict>,
    /// One per place and address state.
    pub hours: Vec<PlaceHours>,
    /// The response without its results.
    pub summary: CheckResponse,
}

impl Verdicts {
    /// The response, one [`CheckResult`] per row of `contacts` (the rows judged, in the same order).
    pub fn into_response(self, contacts: &[ContactRef<'_>]) -> CheckResponse {
        let Verdicts {
            rows,
            numbers,
            hours,
            mut summary,
        } = self;
        summary.results = rows
            .iter()
            .zip(contacts)
            .map(|(row, c)| match *row {
                RowVerdict::Number { number, hours: h } => {
                    let (n, h) = (&numbers[number as usize], &hours[h as usize]);
                    CheckResult {
                        input: clip(c.phone_number, MAX_INPUT_ECHO),
                        phone_number: Some(n.number.to_string()),
                        status: n.status,
                        reason: n.reason.to_string(),
                        list_matches: n.list_matches.to_vec(),
                        callable_now: h.callable_now,
                        window: h.window,
                        next_callable_at: h.next_callable_at,
                        time_zones: h.time_zones.clone(),
                        hours_reason: h.reason.clone(),
                    }
                }
                RowVerdict::Invalid(code) => CheckResult {
                    input: clip(c.phone_number, MAX_INPUT_ECHO),
                    phone_number: None,
                    status: Verdict::Invalid,
                    reason: code.to_string(),
                    list_matches: Vec::new(),
                    callable_now: false,
                    window: None,
                    next_callable_at: None,
                    time_zones: Vec::new(),
                    hours_reason: None,
                },
            })
            .collect();
        summary
    }
}

/// Check `request`: what `local` knows is answered without CXone, the rest asked of CXone, fail-safe. Without `api`
/// the check is against the registries alone (numbers none lists are `allowed`, with that reason).
pub async fn check_with(
    api: Option<&dyn DncApi>,
    request: &CheckRequest,
    local: LocalAnswers<'_>,
    concurrency: usize,
) -> CheckResponse {
    let contacts: Vec<ContactRef<'_>> = request.contacts.iter().map(ContactRef::from).collect();
    let options = JudgeOptions {
        list_ids: request.list_ids.as_deref(),
        at: request.at,
        call_type: request.call_type,
    };
    judge(api, &contacts, options, local, concurrency)
        .await
        .into_response(&contacts)
}

/// What a check request says besides its contacts.
#[derive(Debug, Clone, Copy, Default)]
pub struct JudgeOptions<'a> {
    /// Lists to check (default: every list a rule applies).
    pub list_ids: Option<&'a [String]>,
    /// The instant calling hours are judged at (default: now).
    pub at: Option<DateTime<Utc>>,
    /// The kind of call.
    pub call_type: Option<CallType>,
}

/// A hasher for the batch's own maps, keyed by packed numbers and places: they never hold input an attacker chooses
/// to collide (the keys are numbers already parsed), and SipHash was a tenth of a bulk check's time.
type Fast = std::hash::BuildHasherDefault<rustc_hash::FxHasher>;

/// [`check_with`] over borrowed contacts, answered compactly ([`Verdicts`]): each distinct number judged once, each
/// place's calling hours decided once, no allocation per number on the path a campaign file takes (registries,
/// calling hours, the lists' local knowledge).
pub async fn judge(
    api: Option<&dyn DncApi>,
    contacts: &[ContactRef<'_>],
    options: JudgeOptions<'_>,
    local: LocalAnswers<'_>,
    concurrency: usize,
) -> Verdicts {
    let (snapshot, propagating) = (local.snapshot, local.propagating);
    let started = Instant::now();
    let at = options.at.unwrap_or_else(Utc::now);
    let policy = local.hours.unwrap_or_else(|| Policy::embedded());
    let closures = local.closures.map_or(&[][..], |c| &c.closures[..]);
    let not_checked: Arc<str> = Arc::from("not checked");
    let no_lists: Arc<[String]> = Arc::from(Vec::new());
    let mut rows: Vec<RowVerdict> = Vec::with_capacity(contacts.len());
    // Each distinct number is judged once (the first region code seen is the one sent); every verdict starts as
    // `error` ("not checked") and is replaced by an answer: a number left without one is never `allowed`.
    let mut numbers: Vec<NumberVerdict> = Vec::new();
    let mut regions: Vec<&'static str> = Vec::new();
    let mut index: HashMap<u64, u32, Fast> =
        HashMap::with_capacity_and_hasher(contacts.len(), Fast::default());
    // Calling hours are decided once per place (zones, area code's place) and address state: the decision is the
    // costliest part of a number's check, and a batch spans few places (`Policy::place_key`).
    let mut hours: Vec<PlaceHours> = Vec::new();
    let mut hours_of: HashMap<(PlaceKey, Option<&str>), u32, Fast> = HashMap::default();
    for c in contacts {
        let region = c
            .region_code
            .and_then(DefaultRegion::from_code)
            .unwrap_or_default();
        match Normalizer::new(region).normalize(c.phone_number) {
            Ok(n) => {
                let next = numbers.len() as u32;
                let number = *index.entry(n.e164.packed()).or_insert(next);
                if number == next {
                    numbers.push(NumberVerdict {
                        number: n.e164,
                        status: Verdict::Error,
                        reason: not_checked.clone(),
                        list_matches: no_lists.clone(),
                    });
                    regions.push(region.name());
                }
                let state = c.state.map(str::trim).filter(|s| !s.is_empty());
                let next = hours.len() as u32;
                let h = *hours_of
                    .entry((Policy::place_key(n.e164), state))
                    .or_insert(next);
                if h == next {
                    let d = policy.decide_with(n.e164, state, at, options.call_type, closures);
                    hours.push(PlaceHours {
                        callable_now: d.callable_now,
                        window: d.window,
                        next_callable_at: d.next_callable_at,
                        time_zones: d.time_zones.to_vec(),
                        reason: d.reason.map(|r| r.to_string()),
                    });
                }
                rows.push(RowVerdict::Number { number, hours: h });
            }
            Err(reason) => rows.push(RowVerdict::Invalid(reason.code())),
        }
    }
    drop(index);
    let mut metrics = CheckMetrics {
        total: contacts.len(),
        distinct: numbers.len(),
        ..Default::default()
    };
    let mut to_query: Vec<u32> = Vec::new();
    // A registry's age counts up to the call: judged at the later of now and the instant asked about.
    let judged = at.max(Utc::now());
    // Each registry with its freshness, and the reason and matches a number it lists is answered with.
    type Consulted<'r> = (&'r LoadedRegistry, Freshness, Arc<str>, Arc<[String]>);
    let registries: Vec<Consulted<'_>> = local
        .registries
        .iter()
        .map(|r| {
            (
                r.as_ref(),
                r.freshness(judged),
                Arc::from(format!("registry:{}", r.name())),
                Arc::from(vec![r.name().to_string()]),
            )
        })
        .collect();
    let (dead_letter, local_snapshot, pending): (Arc<str>, Arc<str>, Arc<str>) = (
        Arc::from("dead-letter"),
        Arc::from("local-snapshot"),
        Arc::from("pending-propagation"),
    );
    // Scratch reused for every number: the registries that list or are stale for it, and its E.164 text for the
    // documents keyed by it.
    let (mut listed, mut stale): (Vec<usize>, Vec<&str>) = (Vec::new(), Vec::new());
    let mut e164 = String::with_capacity(16);
    let keyed_by_text = local.dead_letters.is_some_and(|d| !d.is_empty())
        || !snapshot.is_empty()
        || !propagating.is_empty();
    for (slot, verdict) in numbers.iter_mut().enumerate() {
        let packed = verdict.number.packed();
        listed.clear();
        stale.clear();
        let mut uncovered = false;
        for (i, (r, freshness, _, _)) in registries.iter().enumerate() {
            match r.lookup(packed) {
                Lookup::Listed => listed.push(i),
                Lookup::NotListed if *freshness == Freshness::Stale => stale.push(r.name()),
                Lookup::Uncovered => uncovered = true,
                _ => {}
            }
        }
        if !listed.is_empty() {
            metrics.registry_suppressed += 1;
            verdict.status = Verdict::Suppressed;
            (verdict.reason, verdict.list_matches) = match listed[..] {
                [one] => (registries[one].2.clone(), registries[one].3.clone()),
                _ => (
                    Arc::from(clip(
                        &listed
                            .iter()
                            .map(|&i| &*registries[i].2)
                            .collect::<Vec<_>>()
                            .join(","),
                        MAX_REASON,
                    )),
                    listed
                        .iter()
                        .map(|&i| registries[i].0.name().to_string())
                        .collect(),
                ),
            };
            continue;
        }
        // Received and not known held: suppressed with its reason, whatever CXone or a stale registry would say.
        if let Some(cause) = local
            .received
            .iter()
            .find_map(|r| r.cause_of(verdict.number, judged))
        {
            match cause.hold {
                crate::run::Hold::PendingPropagation => metrics.pending_propagation += 1,
                crate::run::Hold::DeadLetter => metrics.dead_letters += 1,
                crate::run::Hold::RunFailed | crate::run::Hold::RefusedFile => {
                    metrics.received_not_held += 1
                }
            }
            verdict.status = Verdict::Suppressed;
            verdict.reason = Arc::from(cause.reason());
            continue;
        }
        if uncovered {
            // Calling into an area code whose registry was not accessed is a violation whether or not the number
            // is registered: never `allowed`, whatever CXone says.
            metrics.registry_not_covering += 1;
            let npa = (packed / 10_000_000) % 1000;
            verdict.status = Verdict::Error;
            verdict.reason = Arc::from(format!("registry-not-covering:{npa:03}"));
            continue;
        }
        if !stale.is_empty() {
            metrics.registry_stale += 1;
            verdict.status = Verdict::Error;
            verdict.reason = Arc::from(clip(
                &stale
                    .iter()
                    .map(|n| format!("registry-stale:{n}"))
                    .collect::<Vec<_>>()
                    .join(","),
                MAX_REASON,
            ));
            continue;
        }
        if keyed_by_text {
            use std::fmt::Write as _;
            e164.clear();
            let _ = write!(e164, "{}", verdict.number);
        }
        if local.dead_letters.is_some_and(|d| d.contains(&e164)) {
            metrics.dead_letters += 1;
            verdict.status = Verdict::Suppressed;
            verdict.reason = dead_letter.clone();
        } else if snapshot.contains(&e164) {
            metrics.prefiltered += 1;
            verdict.status = Verdict::Suppressed;
            verdict.reason = local_snapshot.clone();
        } else if propagating.contains(&e164) {
            metrics.pending_propagation += 1;
            verdict.status = Verdict::Suppressed;
            verdict.reason = pending.clone();
        } else {
            to_query.push(slot as u32);
        }
    }
    // Answered without CXone: registry-only (no api), or a dialect with no batch check (the Admin API), where the
    // lists' verified read-backs are the answer.
    let local_only = match api {
        None => Some("not on any registry consulted"),
        Some(a) if !a.capabilities().batch_check => {
            Some("not on any list as last verified, nor on any registry consulted")
        }
        Some(_) => None,
    };
    match (local_only, api) {
        (Some(allowed_reason), _) => {
            let (status, reason): (Verdict, Arc<str>) = match (local.incomplete, &local.gap) {
                (None, None) => (Verdict::Allowed, Arc::from(allowed_reason)),
                (Some(why), _) => (
                    Verdict::Error,
                    Arc::from(clip(
                        &format!("not answered in full: local knowledge unavailable ({why})"),
                        MAX_REASON,
                    )),
                ),
                (None, Some(gap)) => (
                    Verdict::Error,
                    Arc::from(clip(
                        &format!("not answered: no batch check, and {gap}"),
                        MAX_REASON,
                    )),
                ),
            };
            for slot in to_query {
                let v = &mut numbers[slot as usize];
                v.status = status;
                v.reason = reason.clone();
            }
        }
        (None, Some(api)) => {
            let list_ids = options.list_ids.map(<[String]>::to_vec).unwrap_or_default();
            // Each chunk with the slots of its numbers, to put CXone's answers back.
            let chunks: Vec<(Vec<u32>, Vec<ContactQuery>)> = to_query
                .chunks(MAX_CONTACTS_PER_REQUEST)
                .map(|chunk| {
                    let queries = chunk
                        .iter()
                        .map(|&slot| ContactQuery {
                            phone_number: numbers[slot as usize].number.to_string(),
                            region_code: regions[slot as usize].to_string(),
                            list_ids: list_ids.clone(),
                            match_type: "exact".into(),
                        })
                        .collect();
                    (chunk.to_vec(), queries)
                })
                .collect();
            metrics.cxone_calls = chunks.len();
            ask_cxone(api, &chunks, local.incomplete, concurrency, &mut numbers).await;
        }
        (None, None) => unreachable!("local_only covers a missing api"),
    }
    let registries = registries
        .iter()
        .map(|(r, f, _, _)| RegistryUse {
            registry: r.name().to_string(),
            version: r.manifest.version.clone(),
            as_of: r.manifest.as_of,
            status: *f,
            gap_days: r.gap_days(),
            missing_area_codes: r.manifest.coverage.as_ref().map_or(0, |c| c.missing.len()),
        })
        .collect();
    let mut summary = summarize(
        &rows, &numbers, &hours, metrics, started, at, policy, registries,
    );
    summary.hours_closures = local.closures.map(|c| c.version.clone());
    summary.hours_call_type = options.call_type;
    Verdicts {
        rows,
        numbers,
        hours,
        summary,
    }
}

/// Ask CXone about the numbers of `chunks` (each with the slots of its numbers in `numbers`) and put its answers on
/// them. The whole CXone phase, every chunk's requests and tokens included, ends within one request deadline
/// (`DNCFLOW_CXONE_DEADLINE_SECS` in the Lambda): a chunk not answered by then is `error`, and the check answers in
/// time whatever CXone does.
async fn ask_cxone(
    api: &dyn DncApi,
    chunks: &[(Vec<u32>, Vec<ContactQuery>)],
    incomplete: Option<&str>,
    concurrency: usize,
    numbers: &mut [NumberVerdict],
) {
    let budget = api.request_deadline();
    let deadline = tokio::time::Instant::now() + budget;
    let answers: Vec<_> = futures::stream::iter(chunks.iter())
        .map(|(slots, chunk)| async move {
            let answer = match tokio::time::timeout_at(deadline, api.check_contacts(chunk)).await {
                Ok(answer) => answer.map_err(|e| e.to_string()),
                Err(_) => Err(format!(
                    "CXone did not answer within the check's deadline of {:.1} s",
                    budget.as_secs_f64()
                )),
            };
            (slots, chunk, answer)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut set = |slot: u32, status: Verdict, reason: &str, lists: Vec<String>| {
        let v = &mut numbers[slot as usize];
        v.status = status;
        v.reason = Arc::from(clip(reason, MAX_REASON));
        v.list_matches = Arc::from(lists);
    };
    for (chunk_slots, chunk, answer) in answers {
        let answer = answer.map(|found| crate::adapters::cxone::pair_check_results(chunk, found));
        match answer {
            Ok(Err(mismatch)) => {
                tracing::error!(numbers = chunk.len(), mismatch = %mismatch, "CXone's check answer does not match the numbers asked: answered error");
                let reason = format!(
                    "protocol error: CXone's answer does not match the numbers asked ({mismatch})"
                );
                for &slot in chunk_slots {
                    set(slot, Verdict::Error, &reason, Vec::new());
                }
            }
            Ok(Ok(found)) => {
                for (&slot, r) in chunk_slots.iter().zip(found) {
                    let (verdict, reason) = match (r.status, incomplete) {
                        (CheckStatus::Suppressed, _) => (Verdict::Suppressed, r.reason),
                        (CheckStatus::Allowed, None) => (Verdict::Allowed, r.reason),
                        (CheckStatus::Allowed, Some(why)) => (
                            Verdict::Error,
                            format!("not answered in full: local knowledge unavailable ({why})"),
                        ),
                        (CheckStatus::Error, _) => (Verdict::Error, r.reason),
                    };
                    set(slot, verdict, &reason, r.list_matches);
                }
            }
            Err(e) => {
                tracing::warn!(numbers = chunk.len(), error = %e, "check chunk failed: answered error");
                let reason = format!("check failed: {e}");
                for &slot in chunk_slots {
                    set(slot, Verdict::Error, &reason, Vec::new());
                }
            }
        }
    }
}

/// Count the rows' verdicts and say whether the batch may be dialed: the response without its results.
#[allow(clippy::too_many_arguments)]
fn summarize(
    rows: &[RowVerdict],
    numbers: &[NumberVerdict],
    hours: &[PlaceHours],
    mut metrics: CheckMetrics,
    started: Instant,
    at: DateTime<Utc>,
    policy: &Policy,
    registries: Vec<RegistryUse>,
) -> CheckResponse {
    for row in rows {
        match *row {
            RowVerdict::Number { number, hours: h } => {
                match numbers[number as usize].status {
                    Verdict::Suppressed => metrics.suppressed += 1,
                    Verdict::Allowed => metrics.allowed += 1,
                    Verdict::Invalid => metrics.invalid += 1,
                    Verdict::Error => metrics.errors += 1,
                }
                if !hours[h as usize].callable_now {
                    metrics.outside_calling_hours += 1;
                }
            }
            RowVerdict::Invalid(_) => metrics.invalid += 1,
        }
    }
    let checkable = metrics.total - metrics.invalid;
    metrics.suppression_rate = if checkable == 0 {
        0.0
    } else {
        metrics.suppressed as f64 / checkable as f64
    };
    metrics.duration_ms = started.elapsed().as_millis() as u64;
    let blocked_by: Vec<Blocker> = [
        (Blocker::Error, metrics.errors),
        (Blocker::Suppressed, metrics.suppressed),
        (Blocker::Invalid, metrics.invalid),
        (Blocker::OutsideCallingHours, metrics.outside_calling_hours),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(b, _)| b)
    .collect();
    CheckResponse {
        results: Vec::new(),
        safe_to_dial: blocked_by.is_empty(),
        blocked_by,
        complete: metrics.errors == 0,
        at,
        hours_policy: policy.version.clone(),
        hours_closures: None,
        hours_call_type: None,
        registries,
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
            (
                "OutsideCallingHours",
                "Count",
                metrics.outside_calling_hours as f64,
            ),
            (
                "RegistrySuppressed",
                "Count",
                metrics.registry_suppressed as f64,
            ),
            ("RegistryStale", "Count", metrics.registry_stale as f64),
            (
                "RegistryNotCovering",
                "Count",
                metrics.registry_not_covering as f64,
            ),
            ("ReceivedNotHeld", "Count", metrics.received_not_held as f64),
            (
                "ListsWithoutStatus",
                "Count",
                metrics.lists_without_status as f64,
            ),
        ],
        timestamp_ms,
    )
}

/// A registry's age in days as an EMF line (dimension `Registry`): the staleness alarm fires on it a week before
/// the registry's limit; the gap alarm on its days without a change list, the coverage alarm on its missing area
/// codes.
pub fn registry_age_emf(r: &RegistryUse, now: DateTime<Utc>, timestamp_ms: i64) -> String {
    let age_days = (now - r.as_of).num_seconds() as f64 / 86_400.0;
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "dncflow",
                "Dimensions": [["Registry"]],
                "Metrics": [{"Name": "RegistryAgeDays", "Unit": "None"}, {"Name": "RegistryStale", "Unit": "Count"},
                    {"Name": "RegistryGapDays", "Unit": "Count"}, {"Name": "RegistryMissingAreaCodes", "Unit": "Count"}],
            }],
        },
        "Registry": r.registry,
        "RegistryAgeDays": age_days,
        "RegistryStale": if r.status == Freshness::Stale { 1.0 } else { 0.0 },
        "RegistryGapDays": r.gap_days as f64,
        "RegistryMissingAreaCodes": r.missing_area_codes as f64,
    })
    .to_string()
}

/// The key audit records name numbers with: HMAC-SHA256 under it, since a plain SHA-256 of a phone number is
/// reversed by brute force in minutes (the US number space is ~10^10). Rotatable: each record names the key version.
#[derive(Clone)]
pub struct AuditKey {
    /// The key's version (Secrets Manager's version id), written into every record.
    pub version: String,
    key: secrecy::SecretBox<[u8]>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AuditKey {{ version: {:?}, key: [REDACTED] }}",
            self.version
        )
    }
}

impl AuditKey {
    /// A key of at least 16 bytes; shorter keys are refused (a weak key would make the hashes guessable again).
    pub fn new(version: impl Into<String>, key: &[u8]) -> Result<AuditKey, String> {
        if key.len() < 16 {
            return Err(format!(
                "the audit key must be at least 16 bytes, it has {}",
                key.len()
            ));
        }
        Ok(AuditKey {
            version: version.into(),
            key: secrecy::SecretBox::new(key.to_vec().into_boxed_slice()),
        })
    }

    /// HMAC-SHA256 (hex) of an E.164 number under this key.
    pub fn hash(&self, e164: &str) -> String {
        use hmac::{Hmac, Mac};
        use secrecy::ExposeSecret;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret())
            .expect("HMAC takes keys of any length");
        mac.update(e164.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// An audit record of one check: keyed hashes of the numbers with their verdicts, never the numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// When the check answered (RFC 3339).
    pub timestamp: String,
    /// The tallies of the answers (the summary line and the metrics are built from them).
    pub metrics: CheckMetrics,
    /// Whether the batch was safe to dial.
    pub safe_to_dial: bool,
    /// The version of the audit key the item hashes are made with.
    pub key_version: String,
    /// `[HMAC-SHA256(key, E.164) or "invalid", verdict]` per item.
    pub items: Vec<(String, Verdict)>,
    /// The instant calling hours were judged at.
    #[serde(default)]
    pub hours_at: Option<DateTime<Utc>>,
    /// The version of the calling-hours policy applied.
    #[serde(default)]
    pub hours_policy: String,
    /// The version of the operator's closures document applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours_closures: Option<String>,
    /// The kind of call judged (absent: not said, the strictest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours_call_type: Option<CallType>,
    /// The calling-hours decision per item (aligned with `items`; `None` for an invalid number).
    #[serde(default)]
    pub calling_hours: Vec<Option<HoursAudit>>,
}

/// The calling-hours decision of one item, as audited: no number, only its zones and the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoursAudit {
    /// Whether a call was allowed at the instant.
    pub callable_now: bool,
    /// The first instant a call is allowed.
    pub next_callable_at: Option<DateTime<Utc>>,
    /// The time zones the called party may be in (all are judged; the strictest decides).
    pub time_zones: Vec<Tz>,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The audit record of a response, numbers hashed under `key`.
pub fn audit_record(response: &CheckResponse, timestamp: &str, key: &AuditKey) -> AuditRecord {
    AuditRecord {
        timestamp: timestamp.to_string(),
        metrics: response.metrics.clone(),
        safe_to_dial: response.safe_to_dial,
        key_version: key.version.clone(),
        hours_at: Some(response.at),
        hours_policy: response.hours_policy.clone(),
        hours_closures: response.hours_closures.clone(),
        hours_call_type: response.hours_call_type,
        calling_hours: response
            .results
            .iter()
            .map(|r| {
                r.phone_number.as_ref().map(|_| HoursAudit {
                    callable_now: r.callable_now,
                    next_callable_at: r.next_callable_at,
                    time_zones: r.time_zones.clone(),
                    reason: r.hours_reason.clone(),
                })
            })
            .collect(),
        items: response
            .results
            .iter()
            .map(|r| {
                (
                    r.phone_number
                        .as_deref()
                        .map(|n| key.hash(n))
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
    fn audit_hashes_are_keyed_and_name_the_key_version() {
        let k1 = AuditKey::new("v1", b"0123456789abcdef0123").unwrap();
        let k2 = AuditKey::new("v2", b"another key, 16+ bytes").unwrap();
        let n = "+12025550198";
        assert_eq!(k1.hash(n), k1.hash(n));
        assert_ne!(k1.hash(n), k2.hash(n), "another key, another hash");
        assert_ne!(k1.hash(n), number_hash(n), "not the unkeyed SHA-256");
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
        let jefe = AuditKey {
            version: "t".into(),
            key: secrecy::SecretBox::new(b"Jefe".to_vec().into_boxed_slice()),
        };
        assert_eq!(
            jefe.hash("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(AuditKey::new("short", b"too short").is_err());
        assert!(!format!("{k1:?}").contains("0123456789"));
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
            13
        );
        assert_eq!(v["RegistryNotCovering"], 0.0);
    }
}
