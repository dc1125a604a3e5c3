//! State do-not-call lists' refresh rules as data (`shared/data/state_lists.json`, each with its source): a state
//! list is published on fixed dates and must be in use within `graceDays` of the next publication (or its receipt,
//! read as its publication: the earliest it can be received). A state registry's as-of is the publication date of
//! the list imported; it is stale once the next publication's grace has run out, and its status names the next
//! list expected. Plain functions over plain types.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// The rules embedded at build time.
const EMBEDDED: &str = include_str!("../../data/state_lists.json");

/// One state list's refresh rule, as `shared/data/state_lists.json` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateListRule {
    /// The list's name as the state publishes it (`Texas no-call list`).
    pub name: String,
    /// Publication dates in each year, `MM-DD`.
    pub published: Vec<String>,
    /// Days after a publication the previous list may still be used.
    pub grace_days: u32,
    /// What the grace is counted from in the state's text: `publication`, `receipt` (applied from publication) or
    /// `effective`.
    pub counted_from: String,
    /// Where the rule is read.
    pub source: String,
    /// `verified` (read in the source itself) or `reported` (from secondary sources).
    pub confidence: String,
}

#[derive(Deserialize)]
struct Document {
    states: BTreeMap<String, StateListRule>,
}

fn rules() -> &'static BTreeMap<String, StateListRule> {
    static RULES: OnceLock<BTreeMap<String, StateListRule>> = OnceLock::new();
    RULES.get_or_init(|| {
        serde_json::from_str::<Document>(EMBEDDED)
            .expect("shared/data/state_lists.json is valid (checked by its tests)")
            .states
    })
}

/// The rule of state `scope` (`US-TX`), if dncflow knows one.
pub fn rule(scope: &str) -> Option<&'static StateListRule> {
    rules().get(scope)
}

/// The next list a state registry expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NextList {
    /// The list's name as the state publishes it.
    pub name: String,
    /// The day it is published.
    pub published_on: NaiveDate,
    /// The last day the list in use may be used: the registry is stale after it.
    pub use_by: NaiveDate,
    /// Where the rule is read (the statute or the state's own page), quoted.
    pub source: String,
}

impl StateListRule {
    fn dates_in(&self, year: i32) -> impl Iterator<Item = NaiveDate> + '_ {
        self.published.iter().filter_map(move |md| {
            let (m, d) = md.split_once('-')?;
            NaiveDate::from_ymd_opt(year, m.parse().ok()?, d.parse().ok()?)
        })
    }

    /// The first publication after `day`.
    pub fn next_publication(&self, day: NaiveDate) -> NaiveDate {
        (day.year()..=day.year() + 1)
            .flat_map(|y| self.dates_in(y))
            .filter(|d| *d > day)
            .min()
            .expect("a rule publishes at least once a year")
    }

    /// The list after one as of `as_of` (its publication date): when it is published and the last day the one as of
    /// `as_of` may be used.
    pub fn next_list(&self, as_of: NaiveDate) -> NextList {
        let published_on = self.next_publication(as_of);
        NextList {
            name: self.name.clone(),
            published_on,
            // `graceDays` days from the publication, that day counted: the last day is one before the end.
            use_by: published_on + chrono::Days::new(u64::from(self.grace_days))
                - chrono::Days::new(1),
            source: self.source.clone(),
        }
    }

    /// The freshness limit of a list as of `as_of` (midnight): whole days from it to the end of its last day of use.
    pub fn max_age_days(&self, as_of: NaiveDate) -> u32 {
        let use_by = self.next_list(as_of).use_by;
        u32::try_from((use_by - as_of).num_days() + 1).unwrap_or(u32::MAX)
    }
}

/// The freshness limit of an import of `scope` as of `as_of`: a state list with a rule goes stale when its rule
/// says; any other registry keeps `given` (at most the safe harbor's 31 days, checked before).
pub fn max_age_days_for(scope: &super::Scope, as_of: NaiveDate, given: u32) -> u32 {
    match scope {
        super::Scope::State(state) => rule(state).map_or(given, |r| r.max_age_days(as_of)),
        super::Scope::National(_) => given,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn every_rule_is_read_with_its_source() {
        for (state, r) in rules() {
            assert!(state.starts_with("US-") && state.len() == 5, "{state}");
            assert_eq!(
                r.dates_in(2027).count(),
                r.published.len(),
                "{state}: {:?}",
                r.published
            );
            assert!(
                !r.source.is_empty() && ["verified", "reported"].contains(&r.confidence.as_str())
            );
            assert!(["publication", "receipt", "effective"].contains(&r.counted_from.as_str()));
        }
        assert_eq!(rules().len(), 3);
        assert!(rule("US-CA").is_none());
    }

    #[test]
    fn each_state_goes_stale_when_its_next_list_must_be_in_use() {
        // Texas: the October list may be used for the first 60 days of January 1's (to March 1).
        let tx = rule("US-TX").unwrap();
        let next = tx.next_list(day("2026-10-01"));
        assert_eq!(next.published_on, day("2027-01-01"));
        assert_eq!(next.use_by, day("2027-03-01"));
        assert_eq!(tx.max_age_days(day("2026-10-01")), 152);
        // Pennsylvania: the first 30 days of the next quarterly list.
        let pa = rule("US-PA").unwrap();
        assert_eq!(pa.next_list(day("2027-04-01")).use_by, day("2027-07-30"));
        assert_eq!(pa.max_age_days(day("2027-04-01")), 121);
        // Indiana: a quarter's list is in force from its effective date; the previous one ends the day before.
        let ind = rule("US-IN").unwrap();
        let next = ind.next_list(day("2027-07-01"));
        assert_eq!(
            (next.published_on, next.use_by),
            (day("2027-10-01"), day("2027-09-30"))
        );
        assert_eq!(ind.max_age_days(day("2027-07-01")), 92);
        // An as-of between publications (a list imported late) counts from the next one after it.
        assert_eq!(
            ind.next_list(day("2027-09-30")).published_on,
            day("2027-10-01")
        );
        assert_eq!(
            ind.next_list(day("2027-12-31")).published_on,
            day("2028-01-01")
        );
    }
}
