//! The holiday dates the policy produces for 2026–2028, jurisdiction by jurisdiction, against a table written by
//! hand from the statutes each jurisdiction's `source` names (not from the rules in `calling_hours.json`): a change
//! to a rule that moves a date fails here.

use std::collections::BTreeSet;

use chrono::NaiveDate;

use super::Policy;

/// Every date of 2026–2028 on which `code`'s holidays close calls.
fn closed_days(code: &str) -> BTreeSet<NaiveDate> {
    let p = Policy::embedded();
    let j = &p.jurisdictions[p.index[code]];
    let mut d = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let mut out = BTreeSet::new();
    while d.format("%Y").to_string() != "2029" {
        if j.holiday(d).is_some() {
            out.insert(d);
        }
        d = d.succ_opt().unwrap();
    }
    out
}

fn dates(list: &[&str]) -> BTreeSet<NaiveDate> {
    list.iter()
        .map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
        .collect()
}

#[test]
fn holiday_dates_2026_to_2028_match_the_statutes() {
    // Federal holidays as Alabama, Louisiana, Mississippi and Utah observe their fixed dates: a Saturday date also
    // closes the Friday before, a Sunday date the Monday after (both days closed, the narrower reading).
    let new_years = [
        "2026-01-01",
        "2027-01-01",
        "2027-12-31", // 1 January 2028 is a Saturday
        "2028-01-01",
    ];
    let independence = [
        "2026-07-03",
        "2026-07-04",
        "2027-07-04",
        "2027-07-05",
        "2028-07-04",
    ];
    let veterans = ["2026-11-11", "2027-11-11", "2028-11-10", "2028-11-11"];
    let christmas = ["2026-12-25", "2027-12-24", "2027-12-25", "2028-12-25"];
    let juneteenth = ["2026-06-19", "2027-06-18", "2027-06-19", "2028-06-19"];
    let mlk = ["2026-01-19", "2027-01-18", "2028-01-17"];
    let presidents = ["2026-02-16", "2027-02-15", "2028-02-21"];
    let memorial = ["2026-05-25", "2027-05-31", "2028-05-29"];
    let labor = ["2026-09-07", "2027-09-06", "2028-09-04"];
    let columbus = ["2026-10-12", "2027-10-11", "2028-10-09"];
    let thanksgiving = ["2026-11-26", "2027-11-25", "2028-11-23"];
    // Easter 2026-04-05, 2027-03-28, 2028-04-16.
    let good_friday = ["2026-04-03", "2027-03-26", "2028-04-14"];
    let mardi_gras = ["2026-02-17", "2027-02-09", "2028-02-29"];
    let election = ["2026-11-03", "2027-11-02", "2028-11-07"];

    let all = |parts: &[&[&str]]| -> BTreeSet<NaiveDate> {
        parts.iter().flat_map(|p| dates(p)).collect()
    };

    // Ala. Code 1-3-8, as r. 770-X-5-.17 applies it: Robert E. Lee's birthday with MLK Day, Confederate Memorial Day
    // (fourth Monday of April), Jefferson Davis's birthday (first Monday of June); Mardi Gras only in two counties.
    let alabama = all(&[
        &new_years,
        &mlk,
        &presidents,
        &["2026-04-27", "2027-04-26", "2028-04-24"],
        &memorial,
        &["2026-06-01", "2027-06-07", "2028-06-05"],
        &juneteenth,
        &independence,
        &labor,
        &columbus,
        &veterans,
        &thanksgiving,
        &christmas,
    ]);
    // La. PSC General Order R-29617: the holidays the PSC enforces (Mardi Gras and Good Friday, no Presidents' Day).
    let louisiana = all(&[
        &new_years,
        &mlk,
        &mardi_gras,
        &good_friday,
        &memorial,
        &independence,
        &labor,
        &veterans,
        &thanksgiving,
        &christmas,
    ]);
    // Miss. Code 3-3-7 (the ban itself repealed; kept, stricter than the law).
    let mississippi = all(&[
        &new_years,
        &mlk,
        &presidents,
        &memorial,
        &independence,
        &labor,
        &veterans,
        &thanksgiving,
        &christmas,
    ]);
    // 44 P.S. 11: Good Friday, Flag Day (14 June, no shift), Election Day every year.
    let pennsylvania = all(&[
        &new_years,
        &mlk,
        &presidents,
        &good_friday,
        &memorial,
        &["2026-06-14", "2027-06-14", "2028-06-14"],
        &independence,
        &labor,
        &columbus,
        &election,
        &veterans,
        &thanksgiving,
        &christmas,
    ]);
    // R.I. Gen. Laws 25-1-1: New Year's, Independence, Veterans' and Christmas Day on a weekend move to the following
    // Monday (the federal Friday kept too: 5-61-2 names federal holidays); 4 May (Sunday → Monday); Victory Day
    // (second Monday of August); election day in years of a general election of state officers.
    let rhode_island = all(&[
        &[
            "2026-01-01",
            "2027-01-01",
            "2027-12-31",
            "2028-01-01",
            "2028-01-03",
        ],
        &mlk,
        &presidents,
        &["2026-05-04", "2027-05-04", "2028-05-04"],
        &memorial,
        &juneteenth,
        &[
            "2026-07-03",
            "2026-07-04",
            "2026-07-06",
            "2027-07-04",
            "2027-07-05",
            "2028-07-04",
        ],
        &["2026-08-10", "2027-08-09", "2028-08-14"],
        &labor,
        &columbus,
        &["2026-11-03", "2028-11-07"],
        &[
            "2026-11-11",
            "2027-11-11",
            "2028-11-10",
            "2028-11-11",
            "2028-11-13",
        ],
        &thanksgiving,
        &[
            "2026-12-25",
            "2027-12-24",
            "2027-12-25",
            "2027-12-27",
            "2028-12-25",
        ],
    ]);
    // Utah Code 63G-1-301 as amended in 2025: Juneteenth on a Monday (the one before a Tuesday-Friday 19 June, the
    // one after a weekend); Pioneer Day 24 July (Saturday 2027: the Friday).
    let utah = all(&[
        &new_years,
        &mlk,
        &presidents,
        &memorial,
        &["2026-06-15", "2027-06-21", "2028-06-19"],
        &independence,
        &["2026-07-24", "2027-07-23", "2027-07-24", "2028-07-24"],
        &labor,
        &columbus,
        &veterans,
        &thanksgiving,
        &christmas,
    ]);
    let with_holidays = [
        ("US-AL", alabama),
        ("US-LA", louisiana),
        ("US-MS", mississippi),
        ("US-PA", pennsylvania),
        ("US-RI", rhode_island),
        ("US-UT", utah),
    ];
    let p = Policy::embedded();
    for code in p.index.keys() {
        let expected = with_holidays
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, d)| d.clone())
            .unwrap_or_default();
        let got = closed_days(code);
        let missing: Vec<_> = expected.difference(&got).collect();
        let extra: Vec<_> = got.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{code}: missing {missing:?}, extra {extra:?}"
        );
    }
    assert!(
        p.index.len() >= 21,
        "every jurisdiction is held: {}",
        p.index.len()
    );
}
