//! Calling hours: may a number be called at a given instant, by the called party's local time?
//!
//! A number's place is its candidate time zones ([`zones`]) and its jurisdictions: the federal one of its country,
//! the subdivision of its area code (Florida and Oklahoma presume an in-state area code reaches a resident) and, when
//! the caller names it, the contact's address state, whose zones join the number's (a New York number with a
//! California address may be answered in California). Every jurisdiction must allow the call in every candidate zone:
//! the window is the intersection, as the best dialers compute it. Daylight-saving time comes from the IANA database
//! (`chrono-tz`), never from fixed offsets. A number with no place (non-NANP, toll-free) gets the policy's `unknown`
//! zones and jurisdictions, the most conservative window. The rules are data: `shared/data/calling_hours.json`, each
//! line with its source.

pub mod business_days;
pub mod closures;
#[cfg(test)]
mod edges;
#[cfg(test)]
mod holiday_table;
pub mod holidays;
pub mod zones;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::phone::{tables, E164};
use closures::Closure;
use holidays::HolidayRule;

pub(crate) const EMBEDDED_POLICY: &str = include_str!("../../data/calling_hours.json");

/// How far ahead the next callable instant is looked for: long enough for a holiday next to a weekend in a state
/// with no Sunday calls (four days), short enough to answer fast when a policy allows no call at all.
const HORIZON_DAYS: u32 = 14;

/// Years holiday dates are computed for when the policy loads; dates outside them are computed on demand.
const HOLIDAY_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// A policy file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not the policy's JSON shape.
    #[error("calling-hours policy: {0}")]
    Json(#[from] serde_json::Error),
    /// A value the policy cannot mean.
    #[error("calling-hours policy: {0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyFile {
    version: String,
    jurisdictions: HashMap<String, JurisdictionFile>,
    holidays: HashMap<String, HolidayRule>,
    fallback_jurisdictions: Vec<String>,
    unknown: UnknownFile,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JurisdictionFile {
    weekday: Option<String>,
    saturday: Option<String>,
    sunday: Option<String>,
    #[serde(default)]
    holidays: Vec<String>,
    source: String,
    confidence: String,
    /// Narrower windows for some kinds of calls (`autodialed`, `prerecorded`), applied on top of the above.
    #[serde(default)]
    by_call_type: HashMap<CallType, DaysFile>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DaysFile {
    weekday: Option<String>,
    saturday: Option<String>,
    sunday: Option<String>,
    source: String,
}

/// The kind of call a request asks about: some states' windows differ for autodialed or prerecorded calls. A request
/// that does not say gets the strictest of every kind's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallType {
    /// A person dials and speaks.
    Live,
    /// Dialed by an automatic telephone dialing system (a predictive or progressive dialer).
    Autodialed,
    /// An artificial or prerecorded voice.
    Prerecorded,
}

impl CallType {
    /// The request's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Live => "live",
            CallType::Autodialed => "autodialed",
            CallType::Prerecorded => "prerecorded",
        }
    }
}

impl std::str::FromStr for CallType {
    type Err = String;
    fn from_str(s: &str) -> Result<CallType, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "live" => Ok(CallType::Live),
            "autodialed" => Ok(CallType::Autodialed),
            "prerecorded" => Ok(CallType::Prerecorded),
            other => Err(format!(
                "call type {other:?}: live, autodialed or prerecorded"
            )),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UnknownFile {
    time_zones: Vec<String>,
    jurisdictions: Vec<String>,
}

/// Minutes since local midnight, `[start, end)`.
type Span = (u16, u16);

#[derive(Debug)]
struct Jurisdiction {
    code: String,
    /// Monday–Friday, Saturday, Sunday; `None`: no calls that day.
    days: [Option<Span>; 3],
    holiday_rules: Vec<(String, HolidayRule)>,
    /// Precomputed dates of `holiday_rules` over [`HOLIDAY_YEARS`].
    holiday_dates: HashMap<NaiveDate, usize>,
    /// The rule sets (windows only) that also apply to a kind of call, by index.
    by_call_type: Vec<(CallType, usize)>,
}

impl Jurisdiction {
    fn holiday(&self, date: NaiveDate) -> Option<&str> {
        if self.holiday_rules.is_empty() {
            return None;
        }
        if HOLIDAY_YEARS.contains(&date.year()) {
            return self
                .holiday_dates
                .get(&date)
                .map(|&i| self.holiday_rules[i].0.as_str());
        }
        // The observed day of a 1 January holiday falls in the year before: look at both years.
        self.holiday_rules
            .iter()
            .find(|(_, r)| {
                r.dates(date.year()).contains(&date) || r.dates(date.year() + 1).contains(&date)
            })
            .map(|(name, _)| name.as_str())
    }
}

impl Jurisdiction {
    /// One rule set equivalent to applying every one of `members`: each day's window is the intersection, the
    /// holidays are the union (named with the jurisdiction that keeps them).
    fn merge(all: &[Jurisdiction], members: &[usize]) -> Jurisdiction {
        let mut days: [Option<Span>; 3] = [Some((0, 24 * 60)); 3];
        let mut holiday_rules = Vec::new();
        let mut by_call_type = Vec::new();
        for &m in members {
            let j = &all[m];
            by_call_type.extend(j.by_call_type.iter().copied());
            for (slot, day) in days.iter_mut().zip(j.days) {
                *slot = match (*slot, day) {
                    (Some(a), Some(b)) if a.0.max(b.0) < a.1.min(b.1) => {
                        Some((a.0.max(b.0), a.1.min(b.1)))
                    }
                    _ => None,
                };
            }
            for (name, rule) in &j.holiday_rules {
                holiday_rules.push((format!("{name} ({})", j.code), rule.clone()));
            }
        }
        let mut holiday_dates = HashMap::new();
        for year in HOLIDAY_YEARS {
            for (i, (_, rule)) in holiday_rules.iter().enumerate() {
                for d in rule.dates(year) {
                    holiday_dates.entry(d).or_insert(i);
                }
            }
        }
        let codes: Vec<&str> = members.iter().map(|&m| all[m].code.as_str()).collect();
        Jurisdiction {
            code: format!("unknown place ({})", codes.join(" ")),
            days,
            holiday_rules,
            holiday_dates,
            by_call_type,
        }
    }
}

/// Why a jurisdiction allows no call on a day.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Closed<'a> {
    Holiday(&'a str, &'a str),
    NoCalls(&'a str, Weekday),
    Empty,
}

/// The calling-hours rules: jurisdictions with their windows and holidays, and the defaults for numbers with no place.
#[derive(Debug)]
pub struct Policy {
    /// The policy's version, recorded with every decision.
    pub version: String,
    jurisdictions: Vec<Jurisdiction>,
    index: HashMap<String, usize>,
    fallback: Vec<usize>,
    unknown_zones: Vec<Tz>,
    unknown_jurisdictions: Vec<usize>,
    /// Every subdivision an address state may name (the NANP area-code table's), so a typo is an error rather than a
    /// state without rules.
    known_subdivisions: HashSet<&'static str>,
}

static EMBEDDED: LazyLock<Policy> = LazyLock::new(|| {
    Policy::from_json(EMBEDDED_POLICY).expect("the embedded calling-hours policy is valid")
});

fn parse_span(text: &str) -> Result<Span, String> {
    let parse = |t: &str| -> Result<u16, String> {
        let (h, m) = t
            .split_once(':')
            .ok_or_else(|| format!("not HH:MM: {t:?}"))?;
        let (h, m): (u16, u16) = (
            h.parse().map_err(|_| format!("not HH:MM: {t:?}"))?,
            m.parse().map_err(|_| format!("not HH:MM: {t:?}"))?,
        );
        if h > 24 || m > 59 || (h == 24 && m > 0) {
            return Err(format!("not a time of day: {t:?}"));
        }
        Ok(h * 60 + m)
    };
    let (start, end) = text
        .split_once('-')
        .ok_or_else(|| format!("not HH:MM-HH:MM: {text:?}"))?;
    let span = (parse(start)?, parse(end)?);
    if span.0 >= span.1 {
        return Err(format!("window ends before it starts: {text:?}"));
    }
    Ok(span)
}

impl Policy {
    /// The policy embedded at build time (`shared/data/calling_hours.json`).
    pub fn embedded() -> &'static Policy {
        &EMBEDDED
    }

    /// Read a policy file; every value is checked, so a policy that loads can be applied.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = serde_json::from_str(text)?;
        let invalid = PolicyError::Invalid;
        for (name, rule) in &file.holidays {
            rule.validate()
                .map_err(|e| invalid(format!("holiday {name}: {e}")))?;
        }
        let mut codes: Vec<&String> = file.jurisdictions.keys().collect();
        codes.sort();
        let mut jurisdictions = Vec::new();
        let mut index = HashMap::new();
        for code in codes {
            let j = &file.jurisdictions[code];
            if !matches!(j.confidence.as_str(), "verified" | "reported") || j.source.is_empty() {
                return Err(invalid(format!(
                    "{code}: every rule names its source and a confidence of verified or reported"
                )));
            }
            let mut days = [None; 3];
            for (slot, text) in days.iter_mut().zip([&j.weekday, &j.saturday, &j.sunday]) {
                *slot = text
                    .as_deref()
                    .map(parse_span)
                    .transpose()
                    .map_err(|e| invalid(format!("{code}: {e}")))?;
            }
            let mut holiday_rules = Vec::new();
            for name in &j.holidays {
                let rule = file
                    .holidays
                    .get(name)
                    .ok_or_else(|| invalid(format!("{code}: no holiday named {name:?}")))?;
                holiday_rules.push((name.clone(), rule.clone()));
            }
            let mut holiday_dates = HashMap::new();
            for year in HOLIDAY_YEARS {
                for (i, (_, rule)) in holiday_rules.iter().enumerate() {
                    for d in rule.dates(year) {
                        holiday_dates.entry(d).or_insert(i);
                    }
                }
            }
            index.insert(code.clone(), jurisdictions.len());
            jurisdictions.push(Jurisdiction {
                code: code.clone(),
                days,
                holiday_rules,
                holiday_dates,
                by_call_type: Vec::new(),
            });
        }
        // Each kind-of-call rule is a rule set of its own (windows, no holidays), added to a decision's
        // jurisdictions when the request's kind of call is that one or unsaid.
        let mut typed = Vec::new();
        for (i, code) in index
            .iter()
            .map(|(c, &i)| (i, c.clone()))
            .collect::<Vec<_>>()
        {
            let mut kinds: Vec<_> = file.jurisdictions[&code].by_call_type.iter().collect();
            kinds.sort_by_key(|(k, _)| k.as_str());
            for (kind, d) in kinds {
                if d.source.trim().is_empty() {
                    return Err(invalid(format!("{code} {}: a source", kind.as_str())));
                }
                let mut days = [None; 3];
                for (slot, text) in days.iter_mut().zip([&d.weekday, &d.saturday, &d.sunday]) {
                    *slot = text
                        .as_deref()
                        .map(parse_span)
                        .transpose()
                        .map_err(|e| invalid(format!("{code} {}: {e}", kind.as_str())))?;
                }
                typed.push((
                    i,
                    *kind,
                    Jurisdiction {
                        code: format!("{code} {} calls", kind.as_str()),
                        days,
                        holiday_rules: Vec::new(),
                        holiday_dates: HashMap::new(),
                        by_call_type: Vec::new(),
                    },
                ));
            }
        }
        typed.sort_by(|a, b| a.2.code.cmp(&b.2.code));
        for (i, kind, j) in typed {
            let at = jurisdictions.len();
            jurisdictions[i].by_call_type.push((kind, at));
            jurisdictions.push(j);
        }
        let lookup = |codes: &[String], what: &str| -> Result<Vec<usize>, PolicyError> {
            if codes.iter().any(|c| c == "*") {
                // The jurisdictions the file names (sorted first), not the kind-of-call rule sets after them.
                return Ok((0..index.len()).collect());
            }
            codes
                .iter()
                .map(|c| {
                    index
                        .get(c)
                        .copied()
                        .ok_or_else(|| invalid(format!("{what}: no jurisdiction {c:?}")))
                })
                .collect()
        };
        let fallback = lookup(&file.fallback_jurisdictions, "fallbackJurisdictions")?;
        let unknown_jurisdictions = lookup(&file.unknown.jurisdictions, "unknown.jurisdictions")?;
        let unknown_zones = file
            .unknown
            .time_zones
            .iter()
            .map(|z| {
                z.parse::<Tz>()
                    .map_err(|_| invalid(format!("unknown.timeZones: no IANA zone {z:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if unknown_zones.is_empty() || unknown_jurisdictions.is_empty() {
            return Err(invalid(
                "unknown: at least one time zone and one jurisdiction".into(),
            ));
        }
        // Numbers with no place apply every listed jurisdiction in up to seven zones: merged once here into one rule
        // set (windows intersected, holidays united), so a decision looks up one holiday table, not twenty.
        let merged = Jurisdiction::merge(&jurisdictions, &unknown_jurisdictions);
        jurisdictions.push(merged);
        let unknown_jurisdictions = vec![jurisdictions.len() - 1];
        let known_subdivisions = (200..1000u16)
            .filter_map(tables::npa)
            .filter_map(|n| n.subdivision)
            .collect();
        Ok(Policy {
            version: file.version,
            jurisdictions,
            index,
            fallback,
            unknown_zones,
            unknown_jurisdictions,
            known_subdivisions,
        })
    }

    /// The jurisdictions of a place (country and subdivision codes as ISO 3166 names them).
    fn jurisdictions_of(&self, country: &str, subdivision: Option<&str>, out: &mut Vec<usize>) {
        let federal = match (country, subdivision) {
            (_, Some(s)) if s.starts_with("US-") => Some("US"),
            (_, Some(s)) if s.starts_with("CA-") => Some("CA"),
            ("US", _) => Some("US"),
            ("CA", _) => Some("CA"),
            _ => None,
        };
        let before = out.len();
        for code in federal.into_iter().chain(subdivision) {
            if let Some(&j) = self.index.get(code) {
                if !out.contains(&j) {
                    out.push(j);
                }
            }
        }
        if out.len() == before && federal.is_none() {
            for &j in &self.fallback {
                if !out.contains(&j) {
                    out.push(j);
                }
            }
        }
    }

    /// Whether `code` names a place a closure can close: a jurisdiction of the policy (`US`, `US-LA`, `CA`) or any
    /// state or province a NANP area code serves (`US-DC`, `CA-ON`), with or without rules of its own.
    pub fn has_jurisdiction(&self, code: &str) -> bool {
        self.index.contains_key(code) || self.known_subdivisions.contains(code)
    }

    /// What of `number` a decision depends on: the zones its prefix maps to and its area code's place (or that it
    /// has none). Two numbers with the same key, the same address state, instant, call type and closures get the same
    /// decision, so a batch decides once per key: a campaign file of a million numbers spans a few hundred keys, and
    /// the decision (several IANA conversions each) is the costliest part of checking a number.
    pub fn place_key(number: E164) -> PlaceKey {
        match zones::zones_for(number).filter(|z| z.located) {
            // The addresses of 'static tables: equal addresses, equal contents.
            Some(z) => {
                let npa = ((number.packed() / 10_000_000) % 1000) as u16;
                PlaceKey {
                    zones: z.zones.as_ptr() as usize,
                    place: tables::npa(npa).map_or(0, |info| info as *const _ as usize),
                }
            }
            None => PlaceKey { zones: 0, place: 0 },
        }
    }

    /// Decide whether `number` may be called at `at`. `address_state` is the contact's address state (`FL`,
    /// `US-FL`, `ON`), when known: its rules apply as well as those of the number's area code.
    pub fn decide(
        &self,
        number: E164,
        address_state: Option<&str>,
        at: DateTime<Utc>,
    ) -> HoursDecision<'_> {
        self.decide_with(number, address_state, at, None, &[])
    }

    /// [`Policy::decide`] with the operator's `closures`: one of a jurisdiction of the number (any, for a number
    /// with no place) allows no call while it is in force, so a window it starts in ends when it starts and a call
    /// it covers waits for its end.
    ///
    /// `call_type` is the kind of call: the windows some states set for it apply too; `None` (not said) applies the
    /// strictest of every kind's.
    pub fn decide_with<'p>(
        &'p self,
        number: E164,
        address_state: Option<&str>,
        at: DateTime<Utc>,
        call_type: Option<CallType>,
        closures: &'p [Closure],
    ) -> HoursDecision<'p> {
        let mut jurisdictions: Vec<usize> = Vec::with_capacity(4);
        // The places the number may be in, by name, for the operator's closures (which may name a state without
        // rules of its own).
        let mut places: Vec<&str> = Vec::with_capacity(3);
        let located = zones::zones_for(number).filter(|z| z.located);
        let mut zones: Cow<'_, [Tz]> = match located {
            Some(z) => {
                let npa = ((number.packed() / 10_000_000) % 1000) as u16;
                match tables::npa(npa) {
                    Some(info) => {
                        places.push(info.country);
                        places.extend(info.subdivision);
                        self.jurisdictions_of(info.country, info.subdivision, &mut jurisdictions)
                    }
                    None => jurisdictions.extend(&self.fallback),
                }
                Cow::Borrowed(z.zones)
            }
            None => {
                jurisdictions.extend(&self.unknown_jurisdictions);
                Cow::Borrowed(&self.unknown_zones[..])
            }
        };
        if let Some(state) = address_state.map(str::trim).filter(|s| !s.is_empty()) {
            match self.subdivision(state) {
                Some(sub) => {
                    let country = &sub[..2];
                    places.extend([country, sub]);
                    self.jurisdictions_of(country, Some(sub), &mut jurisdictions);
                    // The contact may be at the address: its zones join the number's (the number's first zone
                    // stays the one windows are written in).
                    let extra = zones::zones_of_subdivision(sub).unwrap_or_default();
                    if extra.iter().any(|z| !zones.contains(z)) {
                        let all = zones.to_mut();
                        for z in extra {
                            if !all.contains(z) {
                                all.push(*z);
                            }
                        }
                    }
                }
                None => {
                    return HoursDecision {
                        callable_now: false,
                        window: None,
                        next_callable_at: None,
                        time_zones: zones,
                        jurisdictions: Vec::new(),
                        located: false,
                        reason: Some(HoursBlock::UnknownAddressState),
                    }
                }
            }
        }
        for j in jurisdictions.clone() {
            for &(kind, typed) in &self.jurisdictions[j].by_call_type {
                if call_type.is_none_or(|c| c == kind) && !jurisdictions.contains(&typed) {
                    jurisdictions.push(typed);
                }
            }
        }
        let applicable: Vec<&'p Closure> = closures
            .iter()
            .filter(|c| {
                c.jurisdiction == closures::ALL
                    || located.is_none()
                    || places.contains(&c.jurisdiction.as_str())
                    || jurisdictions
                        .iter()
                        .any(|&j| self.jurisdictions[j].code == c.jurisdiction)
            })
            .collect();
        self.decide_in(zones, &jurisdictions, located.is_some(), at, &applicable)
    }

    /// `FL`, `fl`, `US-FL` → `US-FL`, if a NANP area code serves it.
    fn subdivision(&self, state: &str) -> Option<&'static str> {
        let upper = state.to_ascii_uppercase();
        let candidates = if upper.len() == 2 {
            vec![format!("US-{upper}"), format!("CA-{upper}")]
        } else {
            vec![upper]
        };
        candidates
            .iter()
            .find_map(|c| self.known_subdivisions.get(c.as_str()).copied())
    }

    fn day_span(&self, jurisdictions: &[usize], date: NaiveDate) -> Result<Span, Closed<'_>> {
        let slot = match date.weekday() {
            Weekday::Sat => 1,
            Weekday::Sun => 2,
            _ => 0,
        };
        let mut span: Span = (0, 24 * 60);
        for &j in jurisdictions {
            let j = &self.jurisdictions[j];
            if let Some(name) = j.holiday(date) {
                return Err(Closed::Holiday(&j.code, name));
            }
            let Some((start, end)) = j.days[slot] else {
                return Err(Closed::NoCalls(&j.code, date.weekday()));
            };
            span = (span.0.max(start), span.1.min(end));
        }
        if span.0 >= span.1 {
            return Err(Closed::Empty);
        }
        Ok(span)
    }

    /// The window of zone `tz` that contains `t`, or the first one after it: `(start, end)` with `end > t`.
    fn zone_window(
        &self,
        tz: Tz,
        jurisdictions: &[usize],
        t: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let mut date = t.with_timezone(&tz).date_naive();
        for _ in 0..HORIZON_DAYS {
            if let Ok((start, end)) = self.day_span(jurisdictions, date) {
                let (s, e) = (
                    instant(tz, date, start, true),
                    instant(tz, date, end, false),
                );
                if e > t && s < e {
                    return Some((s, e));
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    fn decide_in<'p>(
        &'p self,
        zones: Cow<'p, [Tz]>,
        jurisdictions: &[usize],
        located: bool,
        at: DateTime<Utc>,
        applicable: &[&'p Closure],
    ) -> HoursDecision<'p> {
        let horizon = at + Duration::days(HORIZON_DAYS as i64);
        // The earliest instant ≥ `at` inside every zone's window, by sweeping: hold each zone's window containing `t`
        // or next after it; `t` becomes the latest start; a zone whose window ends by then moves to its next one.
        // `t` only grows and never passes the answer (the answer lies in every zone's set), so when every held
        // window still contains `t`, `t` is the answer and the intersection runs to the earliest end.
        let mut t = at;
        let mut found = None;
        let tzs: &[Tz] = &zones;
        let mut windows: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(tzs.len());
        for &tz in tzs {
            match self.zone_window(tz, jurisdictions, t) {
                Some(w) => windows.push(w),
                None => break,
            }
        }
        if windows.len() == tzs.len() {
            for _ in 0..(HORIZON_DAYS as usize * tzs.len() + 2 + applicable.len()) {
                t = windows.iter().fold(t, |t, w| t.max(w.0));
                let mut moved = false;
                for (w, &tz) in windows.iter_mut().zip(tzs) {
                    if w.1 <= t {
                        match self.zone_window(tz, jurisdictions, t) {
                            Some(next) => *w = next,
                            None => {
                                return self.decided(
                                    zones,
                                    jurisdictions,
                                    located,
                                    at,
                                    None,
                                    applicable,
                                )
                            }
                        }
                        moved = true;
                    }
                }
                if !moved {
                    // A closure in force at `t` moves it to the closure's end (the windows follow); one that starts
                    // before the window ends ends it there.
                    if let Some(until) = applicable
                        .iter()
                        .filter(|c| c.start <= t && t < c.end)
                        .map(|c| c.end)
                        .max()
                    {
                        if until > horizon {
                            break;
                        }
                        t = until;
                        continue;
                    }
                    let start = windows.iter().map(|w| w.0).max().unwrap_or(t);
                    let start = applicable
                        .iter()
                        .map(|c| c.end)
                        .filter(|&e| e > start && e <= t)
                        .fold(start, DateTime::max);
                    let end = windows.iter().map(|w| w.1).min().unwrap_or(t);
                    let end = applicable
                        .iter()
                        .map(|c| c.start)
                        .filter(|&s| s > t && s < end)
                        .fold(end, DateTime::min);
                    found = Some((t, start, end));
                    break;
                }
            }
        }
        if found.is_some_and(|(next, ..)| next - at > Duration::days(HORIZON_DAYS as i64)) {
            found = None;
        }
        self.decided(zones, jurisdictions, located, at, found, applicable)
    }

    /// The decision for `found`: the first callable instant ≥ `at` and the window `(start, end)` holding it.
    fn decided<'p>(
        &'p self,
        zones: Cow<'p, [Tz]>,
        jurisdictions: &[usize],
        located: bool,
        at: DateTime<Utc>,
        found: Option<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)>,
        closures: &[&'p Closure],
    ) -> HoursDecision<'p> {
        let primary = zones[0];
        let callable_now = found.is_some_and(|(next, ..)| next == at);
        let reason =
            (!callable_now).then(
                || match closures.iter().find(|c| c.start <= at && at < c.end) {
                    Some(c) => HoursBlock::Closure {
                        id: &c.id,
                        jurisdiction: &c.jurisdiction,
                        reason: &c.reason,
                        until: c.end,
                    },
                    None => self.closed_reason(&zones, jurisdictions, at),
                },
            );
        HoursDecision {
            callable_now,
            next_callable_at: found.map(|(next, ..)| next),
            window: found.map(|(_, s, e)| Window {
                start: s.with_timezone(&primary).fixed_offset(),
                end: e.with_timezone(&primary).fixed_offset(),
                time_zone: primary,
            }),
            time_zones: zones,
            jurisdictions: jurisdictions
                .iter()
                .map(|&j| self.jurisdictions[j].code.as_str())
                .collect(),
            located,
            reason,
        }
    }

    /// Why `at` is not callable, named by the first zone whose rules refuse it.
    fn closed_reason(
        &self,
        zones: &[Tz],
        jurisdictions: &[usize],
        at: DateTime<Utc>,
    ) -> HoursBlock<'_> {
        for &zone in zones {
            let local = at.with_timezone(&zone).naive_local();
            let date = local.date();
            match self.day_span(jurisdictions, date) {
                Err(Closed::Holiday(jurisdiction, holiday)) => {
                    return HoursBlock::Holiday {
                        jurisdiction,
                        holiday,
                        zone,
                    }
                }
                Err(Closed::NoCalls(jurisdiction, day)) => {
                    return HoursBlock::NoCallsOn {
                        jurisdiction,
                        day,
                        zone,
                    }
                }
                Err(Closed::Empty) => return HoursBlock::NoCommonWindow { zone },
                Ok((start, end)) => {
                    if at < instant(zone, date, start, true)
                        || at >= instant(zone, date, end, false)
                    {
                        return HoursBlock::OutsideHours {
                            start,
                            end,
                            zone,
                            local,
                        };
                    }
                }
            }
        }
        HoursBlock::NoWindowAhead
    }
}

/// The instant a local time of day in `tz` names. A time that does not exist (the hour skipped when clocks go
/// forward) moves to the first instant after the gap; a time that exists twice (clocks go back) is read as the later
/// instant for a window's start and the earlier for its end, so the window never grows.
fn instant(tz: Tz, date: NaiveDate, minutes: u16, is_start: bool) -> DateTime<Utc> {
    let base = date.and_time(NaiveTime::MIN) + Duration::minutes(minutes as i64);
    let mut local = base;
    for _ in 0..=24 * 60 {
        match tz.from_local_datetime(&local) {
            chrono::LocalResult::Single(x) => return x.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                return if is_start { a.max(b) } else { a.min(b) };
            }
            chrono::LocalResult::None => local += Duration::minutes(1),
        }
    }
    // No zone skips a whole day; treat the local time as UTC rather than panic.
    Utc.from_utc_datetime(&base)
}

/// A calling window in the called party's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// Opens (RFC 3339 with the zone's offset).
    pub start: DateTime<FixedOffset>,
    /// Closes, exclusive (RFC 3339 with the zone's offset).
    pub end: DateTime<FixedOffset>,
    /// IANA name of the zone the times are written in (the first candidate zone).
    pub time_zone: Tz,
}

/// Why calling hours do not allow a call at an instant; rendered only when asked for (`Display`), so a decision
/// costs no formatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoursBlock<'p> {
    /// A jurisdiction closes the whole day: a holiday.
    Holiday {
        /// The jurisdiction whose holiday it is (`US`, `US-TX`, …).
        jurisdiction: &'p str,
        /// The holiday's name as the policy gives it (e.g. `Juneteenth National Independence Day`).
        holiday: &'p str,
        /// The zone the day is judged in.
        zone: Tz,
    },
    /// A jurisdiction allows no call on this weekday.
    NoCallsOn {
        /// The jurisdiction whose rule it is (`US-TX`, …).
        jurisdiction: &'p str,
        /// The weekday no call is allowed on.
        day: Weekday,
        /// The zone the day is judged in.
        zone: Tz,
    },
    /// The jurisdictions' windows do not overlap that day.
    NoCommonWindow {
        /// The zone the day is judged in.
        zone: Tz,
    },
    /// Before or after the day's window.
    OutsideHours {
        /// Window start, minutes after local midnight.
        start: u16,
        /// Window end, minutes after local midnight.
        end: u16,
        /// The zone the window was judged in (the called party may be in several: each is judged).
        zone: Tz,
        /// The local time asked about.
        local: chrono::NaiveDateTime,
    },
    /// An operator's closure is in force.
    Closure {
        /// The closure's id, as `dncctl hours closure list` shows it.
        id: &'p str,
        /// The jurisdiction it closes (`*`: every one).
        jurisdiction: &'p str,
        /// The operator's reason as recorded with the closure (e.g. a state of emergency), shown with the answer.
        reason: &'p str,
        /// When the closure ends: the first instant a call may be allowed again.
        until: DateTime<Utc>,
    },
    /// The address state names no known state or province.
    UnknownAddressState,
    /// No window within the search horizon.
    NoWindowAhead,
}

impl std::fmt::Display for HoursBlock<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HoursBlock::Holiday {
                jurisdiction,
                holiday,
                zone,
            } => {
                write!(
                    f,
                    "no calls on {holiday} under {jurisdiction} ({})",
                    zone.name()
                )
            }
            HoursBlock::NoCallsOn {
                jurisdiction,
                day,
                zone,
            } => {
                write!(
                    f,
                    "no calls on {day} under {jurisdiction} ({})",
                    zone.name()
                )
            }
            HoursBlock::NoCommonWindow { zone } => {
                write!(f, "no common calling window ({})", zone.name())
            }
            HoursBlock::OutsideHours {
                start,
                end,
                zone,
                local,
            } => write!(
                f,
                "outside calling hours {:02}:{:02}-{:02}:{:02} {} (local time {})",
                start / 60,
                start % 60,
                end / 60,
                end % 60,
                zone.name(),
                local.format("%a %H:%M")
            ),
            HoursBlock::Closure {
                id,
                jurisdiction,
                reason,
                until,
            } => write!(
                f,
                "closed under {jurisdiction} until {} (closure {id}: {reason})",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            HoursBlock::UnknownAddressState => {
                write!(
                    f,
                    "unknown address state: not a US state or Canadian province code"
                )
            }
            HoursBlock::NoWindowAhead => {
                write!(f, "no calling window within the next {HORIZON_DAYS} days")
            }
        }
    }
}

/// What a number's calling-hours decision depends on besides the address state, the instant, the call type and the
/// closures ([`Policy::place_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlaceKey {
    zones: usize,
    place: usize,
}

/// The calling-hours answer for one number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoursDecision<'p> {
    /// Every jurisdiction allows a call now in every candidate zone.
    pub callable_now: bool,
    /// The window containing the instant asked about, or the next one (the intersection over every candidate zone).
    pub window: Option<Window>,
    /// The first instant at or after the one asked about when a call is allowed (UTC); `None` when none comes within
    /// 14 days.
    pub next_callable_at: Option<DateTime<Utc>>,
    /// Candidate IANA zones: the number's, then any the address state adds.
    pub time_zones: Cow<'p, [Tz]>,
    /// Jurisdictions whose rules applied.
    pub jurisdictions: Vec<&'p str>,
    /// Whether the number's area code placed it (else the policy's `unknown` defaults applied).
    pub located: bool,
    /// Why it is not callable now.
    pub reason: Option<HoursBlock<'p>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch decides once per place key: every number sharing a key must get the same decision, for every state,
    /// instant and call type. 12,000 pseudo-random NANP numbers (every area code of the table, any exchange) grouped
    /// by key, each compared with the first of its group.
    #[test]
    fn numbers_with_one_place_key_get_one_decision() {
        let policy = Policy::embedded();
        let npas: Vec<u16> = (200..1000u16)
            .filter(|n| tables::npa(*n).is_some())
            .collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut groups: HashMap<PlaceKey, Vec<E164>> = HashMap::new();
        for _ in 0..12_000 {
            let npa = npas[(next() % npas.len() as u64) as usize];
            let nxx = 200 + next() % 800;
            let line = next() % 10_000;
            let Some(n) = E164::parse(&format!("+1{npa}{nxx}{line:04}")) else {
                continue;
            };
            groups.entry(Policy::place_key(n)).or_default().push(n);
        }
        // Numbers with no place (toll-free, outside NANP) share one key.
        for other in ["+18005550100", "+442079460000", "+33142685300"] {
            groups
                .entry(Policy::place_key(E164::parse(other).unwrap()))
                .or_default()
                .push(E164::parse(other).unwrap());
        }
        assert!(groups.len() > 300, "{} keys", groups.len());
        let instants = ["2026-12-07T14:30:00Z", "2027-03-14T09:59:00Z"];
        let mut compared = 0;
        for members in groups.values().filter(|m| m.len() > 1) {
            for at in instants {
                let at: DateTime<Utc> = at.parse().unwrap();
                for state in [None, Some("US-FL")] {
                    for call_type in [None, Some(CallType::Prerecorded)] {
                        let first = policy.decide_with(members[0], state, at, call_type, &[]);
                        for n in &members[1..] {
                            assert_eq!(
                                policy.decide_with(*n, state, at, call_type, &[]),
                                first,
                                "{} and {} share a key",
                                members[0],
                                n
                            );
                            compared += 1;
                        }
                    }
                }
            }
        }
        assert!(compared > 10_000, "{compared} comparisons");
    }

    #[test]
    fn embedded_policy_loads_and_names_sources() {
        let p = Policy::embedded();
        assert!(p.jurisdictions.len() >= 20);
        assert!(p.index.contains_key("US-RI"));
        // The unknown place's rules are every jurisdiction's, merged into one.
        let merged = &p.jurisdictions[p.unknown_jurisdictions[0]];
        // Weekdays Kentucky's 10:00 to Rhode Island's 18:00; Saturdays to Pennsylvania's noon; never Sunday.
        assert_eq!(
            merged.days,
            [Some((10 * 60, 18 * 60)), Some((10 * 60, 12 * 60)), None]
        );
        assert!(merged.holiday_rules.len() > 50);
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        let base: serde_json::Value = serde_json::from_str(EMBEDDED_POLICY).unwrap();
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "/jurisdictions/US/weekday",
                "21:00-08:00".into(),
                "ends before",
            ),
            ("/jurisdictions/US/weekday", "8am-9pm".into(), "HH:MM"),
            (
                "/jurisdictions/US/confidence",
                "probably".into(),
                "confidence",
            ),
            (
                "/jurisdictions/US-RI/holidays/0",
                "boxingDay".into(),
                "no holiday",
            ),
            (
                "/unknown/timeZones/0",
                "America/Atlantis".into(),
                "no IANA zone",
            ),
            (
                "/fallbackJurisdictions/0",
                "US-XX".into(),
                "no jurisdiction",
            ),
        ];
        for (path, value, expect) in cases {
            let mut doc = base.clone();
            *doc.pointer_mut(path).unwrap() = value;
            let err = Policy::from_json(&doc.to_string()).unwrap_err().to_string();
            assert!(err.contains(expect), "{path}: {err}");
        }
    }

    #[test]
    fn spans_parse() {
        assert_eq!(parse_span("09:00-21:30"), Ok((540, 1290)));
        assert_eq!(parse_span("00:00-24:00"), Ok((0, 1440)));
        assert!(parse_span("25:00-26:00").is_err());
    }
}
