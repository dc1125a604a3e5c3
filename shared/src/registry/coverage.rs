//! What a registry answers for, in space and in time: the area codes it covers (declared at import, checked against
//! what the batch holds) and the days its change lists cover (freshness is the date up to which it is continuous).
//! Plain functions over plain types, tested without a store.

use super::*;
use crate::phone::tables;

/// The scope every national registry is checked against unless one is declared: the US area codes of the
/// project's numbering table (`shared/data/npa.csv`).
pub const NATIONAL: &str = "national";

/// A change-list line may be dated this far past the clock (clock skew between the FTC and here); later is a typo.
pub const FUTURE_SKEW: TimeDelta = TimeDelta::hours(1);

/// What an import declares it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The National Registry's subscription: these area codes.
    National(BTreeSet<u16>),
    /// A state's list (`US-TX`): the numbers of that state's area codes.
    State(String),
}

impl Scope {
    /// From what an operator gives: `scope` (`national` or a state `US-TX`) and `area_codes` (a national
    /// subscription's area codes; default every US area code of the table). `None` when neither is given.
    pub fn from_request(
        scope: Option<&str>,
        area_codes: Option<&[String]>,
    ) -> Result<Option<Scope>, RegistryError> {
        let codes = area_codes
            .map(|codes| parse_area_codes(&codes.join(",")))
            .transpose()?;
        match (scope.map(str::trim), codes) {
            (None, None) => Ok(None),
            (None | Some(NATIONAL), Some(codes)) => Ok(Some(Scope::National(codes))),
            (Some(NATIONAL), None) => Ok(Some(Scope::National(us_area_codes()))),
            (Some(state), None) => {
                if state_area_codes(state).is_empty() {
                    return Err(RegistryError::BadOption {
                        what: format!("scope {state:?}"),
                        reason: "not `national` nor a US state of the numbering table (US-TX, US-CA, …)"
                            .into(),
                    });
                }
                Ok(Some(Scope::State(state.to_string())))
            }
            (Some(state), Some(_)) => Err(RegistryError::BadOption {
                what: format!("scope {state:?} with area codes"),
                reason: "a state's area codes come from the numbering table: give --scope or --area-codes, not both"
                    .into(),
            }),
        }
    }

    /// The scope's name as recorded (`national`, `US-TX`).
    pub fn name(&self) -> &str {
        match self {
            Scope::National(_) => NATIONAL,
            Scope::State(s) => s,
        }
    }

    /// The area codes it declares.
    pub fn declared(&self) -> BTreeSet<u16> {
        match self {
            Scope::National(codes) => codes.clone(),
            Scope::State(s) => state_area_codes(s),
        }
    }
}

/// Every US area code of the numbering table (geographic: what the National Registry's subscription sells).
pub fn us_area_codes() -> BTreeSet<u16> {
    (200..1000)
        .filter(|&n| tables::npa(n).is_some_and(|i| i.country == "US"))
        .collect()
}

/// The area codes of a US state (`US-TX`) in the numbering table.
pub fn state_area_codes(state: &str) -> BTreeSet<u16> {
    (200..1000)
        .filter(|&n| tables::npa(n).is_some_and(|i| i.subdivision == Some(state)))
        .collect()
}

/// Area codes given as text: three-digit codes separated by commas, spaces or new lines (`#` starts a comment).
pub fn parse_area_codes(text: &str) -> Result<BTreeSet<u16>, RegistryError> {
    let mut codes = BTreeSet::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        for token in line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
        {
            let code = (token.len() == 3 && token.bytes().all(|b| b.is_ascii_digit()))
                .then(|| token.parse::<u16>().ok())
                .flatten()
                .filter(|n| *n >= 200);
            match code {
                Some(n) => {
                    codes.insert(n);
                }
                None => {
                    return Err(RegistryError::BadOption {
                        what: format!("area code {token:?}"),
                        reason: "an area code is three digits, 200 to 999".into(),
                    })
                }
            }
        }
    }
    if codes.is_empty() {
        return Err(RegistryError::BadOption {
            what: "area codes".into(),
            reason: "none given".into(),
        });
    }
    Ok(codes)
}

/// What a version covers: recorded in its manifest at import, carried by every apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// `national` or a state (`US-TX`).
    pub scope: String,
    /// Area codes the scope declares.
    pub declared: Vec<String>,
    /// Area codes a full download holds: a number of one is answered from the registry.
    pub covered: Vec<String>,
    /// Declared and not in the import (a forced partial import): its numbers are answered `error`.
    pub missing: Vec<String>,
}

impl Coverage {
    /// The coverage of an import of `present` area codes under `scope`.
    pub fn of_import(scope: &Scope, present: impl IntoIterator<Item = u16>) -> Coverage {
        let declared = scope.declared();
        let present: BTreeSet<u16> = present.into_iter().collect();
        let fmt = |s: &mut dyn Iterator<Item = &u16>| s.map(|n| format!("{n:03}")).collect();
        Coverage {
            scope: scope.name().to_string(),
            declared: fmt(&mut declared.iter()),
            covered: fmt(&mut present.iter()),
            missing: fmt(&mut declared.difference(&present)),
        }
    }

    /// A manifest written before coverage was recorded: national, covering the area codes it holds.
    pub fn legacy(m: &RegistryManifest) -> Coverage {
        let held: Vec<String> = m.area_codes.keys().cloned().collect();
        Coverage {
            scope: NATIONAL.into(),
            declared: held.clone(),
            covered: held,
            missing: Vec::new(),
        }
    }

    /// The scope to import under when none is given: the one this version was imported under.
    pub fn scope(&self) -> Scope {
        if self.scope == NATIONAL {
            Scope::National(
                self.declared
                    .iter()
                    .filter_map(|c| c.parse().ok())
                    .collect(),
            )
        } else {
            Scope::State(self.scope.clone())
        }
    }

    /// Per area code (index = NPA), what a number of it gets from the registry: see [`Cover`].
    pub fn table(&self) -> Vec<Cover> {
        let mut table = vec![Cover::Outside; 1000];
        let codes =
            |v: &[String]| -> Vec<usize> { v.iter().filter_map(|c| c.parse().ok()).collect() };
        if self.scope == NATIONAL {
            // A national registry answers for every US number: an area code it lacks, and one the table does not
            // know yet (a new overlay), cannot be cleared by it.
            for (npa, slot) in table.iter_mut().enumerate().skip(200) {
                match tables::npa(npa as u16) {
                    Some(info) if info.country == "US" => *slot = Cover::Uncovered,
                    None => *slot = Cover::Uncovered,
                    Some(_) => {}
                }
            }
        }
        for npa in codes(&self.declared).into_iter().filter(|n| *n < 1000) {
            table[npa] = Cover::Uncovered;
        }
        for npa in codes(&self.covered).into_iter().filter(|n| *n < 1000) {
            // A state registry answers only inside its state, whatever else its list holds.
            if self.scope == NATIONAL || table[npa] == Cover::Uncovered {
                table[npa] = Cover::Covered;
            }
        }
        table
    }
}

/// What a registry answers for an area code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cover {
    /// A full download holds it: listed or not listed.
    Covered,
    /// The registry answers for it and holds no full download of it: never cleared by this registry.
    Uncovered,
    /// Outside its scope: no answer (unless it lists the number anyway).
    Outside,
}

/// The import options an operator may get wrong: an as-of in the future, a freshness limit above the safe harbor's.
pub fn check_import_dates(
    as_of: NaiveDate,
    max_age_days: u32,
    now: DateTime<Utc>,
) -> Result<(), RegistryError> {
    if as_of > now.date_naive() {
        return Err(RegistryError::BadOption {
            what: format!("asOf {as_of}"),
            reason: format!(
                "in the future (today is {} UTC): a registry is as of the day it was downloaded",
                now.date_naive()
            ),
        });
    }
    if max_age_days == 0 || max_age_days > DEFAULT_MAX_AGE_DAYS {
        return Err(RegistryError::BadOption {
            what: format!("maxAgeDays {max_age_days}"),
            reason: format!(
                "must be 1 to {DEFAULT_MAX_AGE_DAYS} (the Telemarketing Sales Rule's safe harbor needs a copy no older than 31 days)"
            ),
        });
    }
    Ok(())
}

/// Where a registry stands in time: the days its import and change lists cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// The date up to which the registry is continuous: the import's day and every day after it up to this one have
    /// a change list.
    pub continuous_through: NaiveDate,
    /// Days after the import, before the newest change list, that no change list covers.
    pub gaps: Vec<NaiveDate>,
    /// The instant the registry is current as of: the latest change of the continuous days (the import's as-of
    /// when none), never a change past a gap.
    pub as_of: DateTime<Utc>,
}

/// The timeline of a registry imported as of `imported` that applied `lists`. The import covers its own day; each
/// change list covers the days of its changes (and its given as-of date).
pub fn timeline(imported: DateTime<Utc>, lists: &[ChangeListRecord]) -> Timeline {
    let start = imported.date_naive();
    let days: BTreeSet<NaiveDate> = lists
        .iter()
        .flat_map(|l| l.days.iter().copied())
        .filter(|d| *d > start)
        .collect();
    let mut through = start;
    while days.contains(&(through + TimeDelta::days(1))) {
        through += TimeDelta::days(1);
    }
    let newest = days.last().copied().unwrap_or(start);
    let gaps = through
        .iter_days()
        .skip(1)
        .take_while(|d| *d < newest)
        .filter(|d| !days.contains(d))
        .collect();
    let end = (through + TimeDelta::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let latest = lists
        .iter()
        .filter(|l| l.days.iter().any(|d| *d <= through))
        .filter_map(|l| l.latest.or(l.as_of))
        .map(|t| t.min(end - TimeDelta::seconds(1)))
        .max();
    Timeline {
        continuous_through: through,
        gaps,
        as_of: latest.map_or(imported, |l| l.max(imported)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(days: &[&str], latest: &str) -> ChangeListRecord {
        ChangeListRecord {
            name: "l".into(),
            sha256: "s".into(),
            as_of: None,
            latest: Some(latest.parse().unwrap()),
            days: days.iter().map(|d| d.parse().unwrap()).collect(),
            applied_in: String::new(),
            counts: ChangeCounts::default(),
        }
    }

    #[test]
    fn freshness_is_the_continuous_date_and_a_gap_is_named() {
        let imported: DateTime<Utc> = "2026-11-30T00:00:00Z".parse().unwrap();
        let d1 = list(&["2026-12-01"], "2026-12-01T18:00:00Z");
        let d2 = list(&["2026-12-02"], "2026-12-02T18:00:00Z");
        let d4 = list(&["2026-12-04"], "2026-12-04T18:00:00Z");
        let t = timeline(imported, &[]);
        assert_eq!((t.as_of, t.gaps.len()), (imported, 0));
        // In either order, D1 and D2 make the registry continuous through D2.
        for lists in [vec![d1.clone(), d2.clone()], vec![d2.clone(), d1.clone()]] {
            let t = timeline(imported, &lists);
            assert_eq!(t.continuous_through.to_string(), "2026-12-02");
            assert_eq!(t.as_of.to_rfc3339(), "2026-12-02T18:00:00+00:00");
            assert!(t.gaps.is_empty());
        }
        // D3 missing: freshness stays at D2 whatever D4 says, and D3 is a gap.
        let t = timeline(imported, &[d1.clone(), d2.clone(), d4.clone()]);
        assert_eq!(t.continuous_through.to_string(), "2026-12-02");
        assert_eq!(t.as_of.to_rfc3339(), "2026-12-02T18:00:00+00:00");
        assert_eq!(t.gaps, vec!["2026-12-03".parse::<NaiveDate>().unwrap()]);
        // Only D2: D1 is a gap, freshness is the import's.
        let t = timeline(imported, &[d2]);
        assert_eq!((t.as_of, t.gaps.len()), (imported, 1));
        // A list older than the import changes nothing.
        let old = list(&["2026-11-20"], "2026-11-20T10:00:00Z");
        assert_eq!(timeline(imported, &[old]).as_of, imported);
    }

    #[test]
    fn coverage_declared_covered_and_missing() {
        let scope = Scope::National([202u16, 415, 206].into_iter().collect());
        let c = Coverage::of_import(&scope, [202u16, 415, 787]);
        assert_eq!(c.missing, vec!["206"]);
        let t = c.table();
        assert_eq!(t[202], Cover::Covered);
        assert_eq!(t[787], Cover::Covered, "the download holds it");
        assert_eq!(t[206], Cover::Uncovered, "declared, missing");
        assert_eq!(
            t[303],
            Cover::Uncovered,
            "a US area code the registry lacks"
        );
        assert_eq!(t[416], Cover::Outside, "Canada");
        assert!(tables::npa(374).is_none());
        assert_eq!(t[374], Cover::Uncovered, "not in the table: a new overlay");
        // A state: its own area codes only.
        let tx = Scope::State("US-TX".into());
        assert!(tx.declared().contains(&214) && !tx.declared().contains(&202));
        let c = Coverage::of_import(&tx, [214u16, 202]);
        let t = c.table();
        assert_eq!(
            (t[214], t[202], t[303]),
            (Cover::Covered, Cover::Outside, Cover::Outside)
        );
        assert_eq!(t[512], Cover::Uncovered, "a TX area code the list lacks");
        assert!(us_area_codes().len() > 300);
    }

    #[test]
    fn scopes_and_dates_refuse_what_cannot_be_right() {
        assert!(Scope::from_request(Some("US-ZZ"), None).is_err());
        assert!(Scope::from_request(Some("US-TX"), Some(&["214".into()])).is_err());
        assert!(parse_area_codes("202, 41").is_err());
        assert_eq!(
            parse_area_codes("202,415\n# comment\n206 303")
                .unwrap()
                .len(),
            4
        );
        assert_eq!(
            Scope::from_request(None, None).unwrap(),
            None,
            "default decided against the live version"
        );
        let now: DateTime<Utc> = "2026-12-06T04:00:00Z".parse().unwrap();
        assert!(check_import_dates("2026-12-06".parse().unwrap(), 31, now).is_ok());
        assert!(check_import_dates("2026-12-07".parse().unwrap(), 31, now).is_err());
        assert!(check_import_dates("2026-12-01".parse().unwrap(), 3650, now).is_err());
        assert!(check_import_dates("2026-12-01".parse().unwrap(), 0, now).is_err());
    }
}
