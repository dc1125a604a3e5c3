//! Named holidays as rules that give a date for any year: a fixed day of a month (with the observance shift its
//! statute names), the n-th (or last) weekday of a month (with an offset: the day after Thanksgiving, Election Day),
//! or an offset from Easter (Mardi Gras, Good Friday), optionally in even years only (a general election). Rules
//! rather than a list of dates so the policy never runs out.

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Deserialize;

/// How a policy file defines one holiday.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HolidayRule {
    /// Month (1–12) of a fixed-date or weekday rule.
    #[serde(default)]
    pub month: Option<u32>,
    /// Day of the month of a fixed-date rule.
    #[serde(default)]
    pub day: Option<u32>,
    /// Weekday (`Mon` … `Sun`) of an n-th-weekday rule.
    #[serde(default)]
    pub weekday: Option<String>,
    /// Which occurrence of `weekday` in `month`: 1–5, or −1 for the last.
    #[serde(default)]
    pub nth: Option<i32>,
    /// Days added to an n-th-weekday date (Election Day is the Monday + 1).
    #[serde(default)]
    pub offset_days: Option<i64>,
    /// Days from Easter Sunday (Gregorian).
    #[serde(default)]
    pub easter_offset: Option<i64>,
    /// Which other day a fixed date falling on a weekend (or, for some, any day) is observed on; `true` is
    /// [`Observance::Federal`]. Where the date stays a holiday, both days are holidays: the narrower reading for a
    /// no-calls rule.
    #[serde(default, deserialize_with = "observance")]
    pub observed: Observance,
    /// Only in even years (a general election of state officers).
    #[serde(default)]
    pub even_years: bool,
}

/// How a fixed-date holiday is observed when it does not fall on a weekday of its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Observance {
    /// Observed on its date only, whatever the weekday.
    #[default]
    None,
    /// Saturday: also the Friday before; Sunday: also the Monday after (5 U.S.C. 6103(b)).
    Federal,
    /// Sunday: also the Monday after (no Saturday shift).
    SundayToMonday,
    /// Saturday or Sunday: also the following Monday (Rhode Island's state holidays, R.I. Gen. Laws 25-1-1).
    FollowingMonday,
    /// Saturday: also the Friday before and the Monday after; Sunday: also the Monday after. A federal holiday in a
    /// state that observes its own on the following Monday (Rhode Island, whose rule names state and federal
    /// holidays).
    FederalAndFollowingMonday,
    /// Not the date but a Monday: the date itself when a Monday, the Monday before when it falls Tuesday-Friday, the
    /// Monday after when it falls on a weekend (Utah's Juneteenth, Utah Code 63G-1-301(2)(c)-(d) as amended 2025).
    MondayInstead,
}

/// `observed` is `true`/`false` (the federal shift or none) or the name of an [`Observance`].
fn observance<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Observance, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Field {
        Flag(bool),
        Named(Observance),
    }
    Ok(match Field::deserialize(d)? {
        Field::Flag(true) => Observance::Federal,
        Field::Flag(false) => Observance::None,
        Field::Named(o) => o,
    })
}

impl HolidayRule {
    /// Check the rule is one of the three shapes and its values exist.
    pub fn validate(&self) -> Result<(), String> {
        if self.observed != Observance::None && self.day.is_none() {
            return Err("only a fixed date (month and day) has an observance".into());
        }
        match (self.day, &self.weekday, self.easter_offset) {
            (Some(day), None, None) => {
                let month = self.month.ok_or("a fixed date needs a month")?;
                // 2024 is a leap year: 29 February is a valid rule (used in leap years only).
                NaiveDate::from_ymd_opt(2024, month, day)
                    .map(|_| ())
                    .ok_or_else(|| format!("no such date: month {month}, day {day}"))
            }
            (None, Some(weekday), None) => {
                self.month
                    .filter(|m| (1..=12).contains(m))
                    .ok_or("an n-th weekday rule needs a month 1-12")?;
                weekday
                    .parse::<Weekday>()
                    .map_err(|_| format!("not a weekday: {weekday:?}"))?;
                match self.nth {
                    Some(-1 | 1..=5) => Ok(()),
                    other => Err(format!("nth must be 1-5 or -1, it is {other:?}")),
                }
            }
            (None, None, Some(_)) if self.month.is_none() => Ok(()),
            _ => Err(
                "a holiday is exactly one of {month, day}, {month, weekday, nth}, {easterOffset}"
                    .into(),
            ),
        }
    }

    /// The holiday's dates in `year` (the day itself and, when observed, the weekday it is observed on).
    pub fn dates(&self, year: i32) -> Vec<NaiveDate> {
        let mut out = Vec::with_capacity(3);
        if self.even_years && year % 2 != 0 {
            return out;
        }
        if let Some(offset) = self.easter_offset {
            if let Some(d) = easter(year).and_then(|e| shift(e, offset)) {
                out.push(d);
            }
        } else if let (Some(month), Some(day)) = (self.month, self.day) {
            if let Some(d) = NaiveDate::from_ymd_opt(year, month, day) {
                let (day_of_week, plus) = (d.weekday(), |n: i64| shift(d, n));
                use Observance as O;
                use Weekday::{Sat, Sun};
                if self.observed != O::MondayInstead {
                    out.push(d);
                }
                let also: &[i64] = match (self.observed, day_of_week) {
                    (O::Federal, Sat) => &[-1],
                    (O::Federal | O::SundayToMonday | O::FollowingMonday, Sun) => &[1],
                    (O::FollowingMonday, Sat) => &[2],
                    (O::FederalAndFollowingMonday, Sat) => &[-1, 2],
                    (O::FederalAndFollowingMonday, Sun) => &[1],
                    (O::MondayInstead, Sat) => &[2],
                    (O::MondayInstead, Sun) => &[1],
                    (O::MondayInstead, other) => &[-(other.num_days_from_monday() as i64)],
                    _ => &[],
                };
                out.extend(also.iter().filter_map(|&n| plus(n)));
            }
        } else if let (Some(month), Some(weekday), Some(nth)) =
            (self.month, &self.weekday, self.nth)
        {
            let Ok(weekday) = weekday.parse::<Weekday>() else {
                return out;
            };
            let d = if nth > 0 {
                NaiveDate::from_weekday_of_month_opt(year, month, weekday, nth as u8)
            } else {
                last_weekday_of_month(year, month, weekday)
            };
            if let Some(d) = d.and_then(|d| shift(d, self.offset_days.unwrap_or(0))) {
                out.push(d);
            }
        }
        out
    }
}

fn shift(d: NaiveDate, days: i64) -> Option<NaiveDate> {
    if days >= 0 {
        d.checked_add_days(Days::new(days as u64))
    } else {
        d.checked_sub_days(Days::new(days.unsigned_abs()))
    }
}

fn last_weekday_of_month(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let mut d = first_of_next.pred_opt()?;
    while d.weekday() != weekday {
        d = d.pred_opt()?;
    }
    Some(d)
}

/// Easter Sunday in the Gregorian calendar (the anonymous Gregorian algorithm, "Meeus/Jones/Butcher"): twelve lines
/// of arithmetic, not worth a dependency.
pub fn easter(year: i32) -> Option<NaiveDate> {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> HolidayRule {
        let r: HolidayRule = serde_json::from_str(json).unwrap();
        r.validate().unwrap();
        r
    }

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn easter_matches_known_dates() {
        assert_eq!(easter(2024), Some(ymd(2024, 3, 31)));
        assert_eq!(easter(2025), Some(ymd(2025, 4, 20)));
        assert_eq!(easter(2026), Some(ymd(2026, 4, 5)));
        assert_eq!(easter(2027), Some(ymd(2027, 3, 28)));
        assert_eq!(easter(2038), Some(ymd(2038, 4, 25)));
    }

    #[test]
    fn rules_give_the_calendar_dates() {
        let thanksgiving = rule(r#"{"month": 11, "weekday": "Thu", "nth": 4}"#);
        assert_eq!(thanksgiving.dates(2026), [ymd(2026, 11, 26)]);
        let memorial = rule(r#"{"month": 5, "weekday": "Mon", "nth": -1}"#);
        assert_eq!(memorial.dates(2026), [ymd(2026, 5, 25)]);
        let election = rule(r#"{"month": 11, "weekday": "Mon", "nth": 1, "offsetDays": 1}"#);
        assert_eq!(election.dates(2026), [ymd(2026, 11, 3)]);
        // 1 November 2027 is a Monday: Election Day is the 2nd.
        assert_eq!(election.dates(2027), [ymd(2027, 11, 2)]);
        let mardi_gras = rule(r#"{"easterOffset": -47}"#);
        assert_eq!(mardi_gras.dates(2026), [ymd(2026, 2, 17)]);
        // Independence Day 2026 is a Saturday: observed Friday 3 July as well.
        let july4 = rule(r#"{"month": 7, "day": 4, "observed": true}"#);
        assert_eq!(july4.dates(2026), [ymd(2026, 7, 4), ymd(2026, 7, 3)]);
        // Christmas 2022 was a Sunday: observed Monday 26 December.
        let christmas = rule(r#"{"month": 12, "day": 25, "observed": true}"#);
        assert_eq!(
            christmas.dates(2022),
            [ymd(2022, 12, 25), ymd(2022, 12, 26)]
        );
        assert_eq!(christmas.dates(2026), [ymd(2026, 12, 25)]);
        // Rhode Island: a Saturday holiday is also the following Monday.
        let ri = rule(r#"{"month": 7, "day": 4, "observed": "followingMonday"}"#);
        assert_eq!(ri.dates(2026), [ymd(2026, 7, 4), ymd(2026, 7, 6)]);
        let both = rule(r#"{"month": 12, "day": 25, "observed": "federalAndFollowingMonday"}"#);
        assert_eq!(
            both.dates(2027),
            [ymd(2027, 12, 25), ymd(2027, 12, 24), ymd(2027, 12, 27)]
        );
        // Utah's Juneteenth: the Monday before (Friday 19 June 2026), after (Saturday 2027), the day (Monday 2028).
        let ut = rule(r#"{"month": 6, "day": 19, "observed": "mondayInstead"}"#);
        assert_eq!(ut.dates(2026), [ymd(2026, 6, 15)]);
        assert_eq!(ut.dates(2027), [ymd(2027, 6, 21)]);
        assert_eq!(ut.dates(2028), [ymd(2028, 6, 19)]);
        // A general election: even years only.
        let election = rule(
            r#"{"month": 11, "weekday": "Mon", "nth": 1, "offsetDays": 1, "evenYears": true}"#,
        );
        assert_eq!(election.dates(2026), [ymd(2026, 11, 3)]);
        assert!(election.dates(2027).is_empty());
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in [
            r#"{"month": 2, "day": 30}"#,
            r#"{"month": 11, "weekday": "Thursday-ish", "nth": 4}"#,
            r#"{"month": 11, "weekday": "Thu", "nth": 0}"#,
            r#"{"month": 11, "day": 1, "easterOffset": 2}"#,
            r#"{"month": 11, "weekday": "Thu", "nth": 4, "observed": true}"#,
            r#"{}"#,
        ] {
            let r: HolidayRule = serde_json::from_str(bad).unwrap();
            assert!(r.validate().is_err(), "{bad}");
        }
    }
}
