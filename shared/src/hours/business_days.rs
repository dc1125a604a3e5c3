//! Business days, for the deadline of 47 CFR 64.1200(d)(3): a do-not-call request must be honoured within ten
//! business days of its receipt. A business day is a Monday to Friday that is not a federal legal holiday
//! (5 U.S.C. 6103(a)), a holiday falling on a Saturday being observed on the Friday before and one on a Sunday on the
//! Monday after (6103(b)). The holidays are the calling-hours policy's own rules (`shared/data/calling_hours.json`,
//! `federalHolidays` names them), so the two never disagree about a date.
//!
//! How a deadline is counted: the day of receipt is not counted (a request received at 16:59 on a Monday is not
//! given the Monday); the business days after it are, up to and including the day of verification. Days are dates
//! in the calendar's time zone (default `America/New_York`), from the IANA database, so a receipt late on a
//! Sunday evening in New York, already Monday in UTC, is a Sunday receipt. A request received on day D is honoured
//! in time when verified before the end of the tenth business day after D.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Days, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

use super::holidays::HolidayRule;

/// Business days a business has to honour a do-not-call request (47 CFR 64.1200(d)(3), in force since 2025-04-11).
pub const DEADLINE_BUSINESS_DAYS: u32 = 10;

/// The zone whose dates count when none is configured: the federal government's business day.
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::America::New_York;

/// Years whose holidays are computed once; a date outside them is judged from the rules directly (slower, same
/// answer).
const YEARS: std::ops::RangeInclusive<i32> = 1900..=2300;

/// A Monday: weekdays are counted from it.
const EPOCH_MONDAY: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 5) {
    Some(d) => d,
    None => panic!("1970-01-05 exists"),
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyHolidays {
    holidays: HashMap<String, HolidayRule>,
    federal_holidays: FederalHolidays,
}

#[derive(Deserialize)]
struct FederalHolidays {
    names: Vec<String>,
}

/// The federal holidays' rules, by name, from the embedded policy.
fn federal_rules() -> Vec<(String, HolidayRule)> {
    let file: PolicyHolidays = serde_json::from_str(super::EMBEDDED_POLICY)
        .expect("the embedded calling-hours policy names its federal holidays");
    file.federal_holidays
        .names
        .iter()
        .map(|name| {
            let rule = file
                .holidays
                .get(name)
                .unwrap_or_else(|| panic!("federal holiday {name} has no rule"));
            rule.validate()
                .unwrap_or_else(|e| panic!("federal holiday {name}: {e}"));
            (name.clone(), rule.clone())
        })
        .collect()
}

static FEDERAL: LazyLock<BusinessCalendar> =
    LazyLock::new(|| BusinessCalendar::new(DEFAULT_TIME_ZONE));

/// The setting naming the zone whose dates business days are counted in (an IANA name such as `America/Chicago`;
/// default [`DEFAULT_TIME_ZONE`]): the Lambdas' environment (the template's `BusinessDaysTimeZone`) and `dncctl`'s.
pub const TIME_ZONE_SETTING: &str = "DNCFLOW_BUSINESS_TIME_ZONE";

/// A time zone setting that names no zone of the IANA database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {TIME_ZONE_SETTING} is not an IANA time zone (for example America/New_York): {value:?}")]
pub struct UnknownTimeZone {
    /// What the setting held.
    pub value: String,
}

/// Calendars built so far, one per zone (each holds some 4,000 holiday dates: built once, kept for the process).
static BY_ZONE: LazyLock<std::sync::Mutex<HashMap<Tz, &'static BusinessCalendar>>> =
    LazyLock::new(Default::default);

/// Federal business days in a time zone.
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    zone: Tz,
    rules: Vec<(String, HolidayRule)>,
    /// Every holiday of [`YEARS`] that falls on a weekday (the date itself or its observed day), with its name.
    weekday_holidays: BTreeMap<NaiveDate, String>,
    /// The same dates, sorted, for counting by binary search.
    sorted: Vec<NaiveDate>,
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Weekdays in `[EPOCH_MONDAY, d]` (negative before it): arithmetic, no loop.
fn weekdays_through(d: NaiveDate) -> i64 {
    let k = (d - EPOCH_MONDAY).num_days();
    5 * k.div_euclid(7) + (k.rem_euclid(7) + 1).min(5)
}

impl BusinessCalendar {
    /// The federal calendar in `America/New_York`, built once.
    pub fn federal() -> &'static BusinessCalendar {
        &FEDERAL
    }

    /// The federal calendar in the zone named `name` (an IANA name), built once per zone.
    pub fn for_zone(name: &str) -> Result<&'static BusinessCalendar, UnknownTimeZone> {
        let zone: Tz = name.trim().parse().map_err(|_| UnknownTimeZone {
            value: name.to_string(),
        })?;
        if zone == DEFAULT_TIME_ZONE {
            return Ok(Self::federal());
        }
        let mut built = BY_ZONE.lock().unwrap_or_else(|e| e.into_inner());
        Ok(*built
            .entry(zone)
            .or_insert_with(|| Box::leak(Box::new(BusinessCalendar::new(zone)))))
    }

    /// The federal calendar in the zone the deployment configured ([`TIME_ZONE_SETTING`] in the environment;
    /// unset or empty, [`DEFAULT_TIME_ZONE`]). A setting that names no zone is an error: the Lambdas and `dncctl`
    /// check it when they start, so a deadline is never counted in a zone nobody chose.
    pub fn configured() -> Result<&'static BusinessCalendar, UnknownTimeZone> {
        match std::env::var(TIME_ZONE_SETTING) {
            Ok(v) if !v.trim().is_empty() => Self::for_zone(&v),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(Self::federal()),
            Err(std::env::VarError::NotUnicode(v)) => Err(UnknownTimeZone {
                value: v.to_string_lossy().into_owned(),
            }),
        }
    }

    /// [`BusinessCalendar::configured`] where a record must be written whatever the setting holds (a run's status,
    /// a failure's): a setting that names no zone (already refused when the process started) is logged and the
    /// default zone used; every deadline records the zone it was counted in.
    pub fn configured_or_default() -> &'static BusinessCalendar {
        Self::configured().unwrap_or_else(|e| {
            tracing::error!(error = %e, default = %DEFAULT_TIME_ZONE, "business days counted in the default zone");
            Self::federal()
        })
    }

    /// The federal calendar with dates taken in `zone`.
    pub fn new(zone: Tz) -> BusinessCalendar {
        let rules = federal_rules();
        let mut weekday_holidays = BTreeMap::new();
        for year in YEARS {
            for (name, rule) in &rules {
                for d in rule.dates(year) {
                    if !is_weekend(d) {
                        weekday_holidays.entry(d).or_insert_with(|| name.clone());
                    }
                }
            }
        }
        let sorted = weekday_holidays.keys().copied().collect();
        BusinessCalendar {
            zone,
            rules,
            weekday_holidays,
            sorted,
        }
    }

    /// The same holidays with dates taken in `zone`.
    pub fn in_zone(&self, zone: Tz) -> BusinessCalendar {
        BusinessCalendar {
            zone,
            ..self.clone()
        }
    }

    /// The zone whose dates count.
    pub fn time_zone(&self) -> Tz {
        self.zone
    }

    fn in_years(d: NaiveDate) -> bool {
        YEARS.contains(&d.year())
    }

    /// The federal holiday `date` is (or is observed on), when it is a weekday; `None` otherwise.
    pub fn holiday(&self, date: NaiveDate) -> Option<&str> {
        if is_weekend(date) {
            return None;
        }
        if Self::in_years(date) {
            return self.weekday_holidays.get(&date).map(String::as_str);
        }
        // The observed day of a 1 January holiday falls in the year before: look at both years.
        self.rules
            .iter()
            .find(|(_, r)| {
                [date.year(), date.year() + 1]
                    .iter()
                    .any(|&y| r.dates(y).contains(&date))
            })
            .map(|(name, _)| name.as_str())
    }

    /// Monday to Friday and not a federal holiday.
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        !is_weekend(date) && self.holiday(date).is_none()
    }

    /// Business days in `(from, to]`: after `from`, up to and including `to`; 0 when `to` is not after `from`.
    pub fn business_days_after(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        if to <= from {
            return 0;
        }
        if !(Self::in_years(from) && Self::in_years(to)) {
            let mut n = 0;
            let mut d = from;
            while d < to {
                d = d.succ_opt().unwrap_or(to);
                n += u32::from(self.is_business_day(d));
            }
            return n;
        }
        let weekdays = weekdays_through(to) - weekdays_through(from);
        let holidays =
            self.sorted.partition_point(|h| *h <= to) - self.sorted.partition_point(|h| *h <= from);
        (weekdays - holidays as i64).max(0) as u32
    }

    /// The `n`-th business day after `from` (`from` itself when `n` is 0).
    pub fn nth_business_day_after(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut d = from;
        let mut left = n;
        while left > 0 {
            // Whole weeks first (each holds five weekdays; the holidays among them are made up one day at a time).
            if left > 10 && Self::in_years(d) {
                let weeks = u64::from(left / 5 - 1);
                if let Some(next) = d.checked_add_days(Days::new(weeks * 7)) {
                    if Self::in_years(next) {
                        left -= self.business_days_after(d, next);
                        d = next;
                        continue;
                    }
                }
            }
            d = match d.succ_opt() {
                Some(next) => next,
                None => return d,
            };
            if self.is_business_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// The date of `t` in the calendar's zone.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.zone).date_naive()
    }

    /// The first instant of `date` in the calendar's zone (the earliest, should a zone skip or repeat midnight).
    pub fn start_of(&self, date: NaiveDate) -> DateTime<Utc> {
        let mut t = date.and_hms_opt(0, 0, 0).unwrap_or_default();
        // A zone that skips midnight (a DST change at 00:00) starts the day at the first instant that exists.
        for _ in 0..4 {
            if let Some(local) = self.zone.from_local_datetime(&t).earliest() {
                return local.with_timezone(&Utc);
            }
            t += chrono::Duration::minutes(30);
        }
        Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
    }

    /// The deadline of a request received at `received`: the first instant after the tenth business day that
    /// follows the day of receipt. Verified before it is in time.
    pub fn deadline(&self, received: DateTime<Utc>) -> DateTime<Utc> {
        let last = self.nth_business_day_after(self.local_date(received), DEADLINE_BUSINESS_DAYS);
        self.start_of(last.succ_opt().unwrap_or(last))
    }

    /// Business days from the receipt to `at` (the day of receipt not counted, the day of `at` counted).
    pub fn elapsed(&self, received: DateTime<Utc>, at: DateTime<Utc>) -> u32 {
        self.business_days_after(self.local_date(received), self.local_date(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zone_is_configurable_and_changes_the_answer() {
        let ny = BusinessCalendar::for_zone("America/New_York").unwrap();
        let tokyo = BusinessCalendar::for_zone(" Asia/Tokyo ").unwrap();
        assert_eq!(ny.time_zone(), DEFAULT_TIME_ZONE);
        assert_eq!(tokyo.time_zone(), chrono_tz::Asia::Tokyo);
        assert!(std::ptr::eq(
            tokyo,
            BusinessCalendar::for_zone("Asia/Tokyo").unwrap()
        ));
        // Tuesday 1 December 2026 at 14:05 in New York is Wednesday 2 December at 04:05 in Tokyo: the tenth
        // business day after it is Wednesday 16 December in both, which ends at midnight of each zone.
        let received = at("2026-12-01T19:05:00Z");
        assert_eq!(ny.deadline(received), at("2026-12-16T05:00:00Z"));
        assert_eq!(tokyo.deadline(received), at("2026-12-16T15:00:00Z"));
        // Friday 4 December at 20:00 in New York is Saturday 5 December in Tokyo; verified on Monday the 7th at
        // noon in New York, Tuesday 02:00 in Tokyo: one business day in New York (Monday), two in Tokyo (Monday
        // and Tuesday).
        let friday_evening = at("2026-12-05T01:00:00Z");
        let monday_noon = at("2026-12-07T17:00:00Z");
        assert_eq!(ny.elapsed(friday_evening, monday_noon), 1);
        assert_eq!(tokyo.elapsed(friday_evening, monday_noon), 2);
        for bad in ["Mars/Olympus", "EST5EDT6", ""] {
            let e = BusinessCalendar::for_zone(bad).unwrap_err();
            assert!(e.to_string().contains(TIME_ZONE_SETTING), "{e}");
        }
    }

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The plain count the fast one must equal: walk the days.
    fn day_by_day(cal: &BusinessCalendar, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut n = 0;
        let mut d = from;
        while d < to {
            d = d.succ_opt().unwrap();
            if d.weekday().num_days_from_monday() < 5 && cal.holiday(d).is_none() {
                n += 1;
            }
        }
        n
    }

    #[test]
    fn federal_holidays_and_their_observed_days() {
        let cal = BusinessCalendar::federal();
        // 2026: Independence Day is a Saturday, observed Friday 3 July; 2027: Christmas and New Year's Day 2028
        // are Saturdays (Friday 24 and Friday 31 December 2027 off); Juneteenth 2027 is a Saturday (Friday 18).
        for (d, name) in [
            (ymd(2026, 1, 1), "newYearsDay"),
            (ymd(2026, 1, 19), "mlkDay"),
            (ymd(2026, 2, 16), "presidentsDay"),
            (ymd(2026, 5, 25), "memorialDay"),
            (ymd(2026, 6, 19), "juneteenth"),
            (ymd(2026, 7, 3), "independenceDay"),
            (ymd(2026, 9, 7), "laborDay"),
            (ymd(2026, 10, 12), "columbusDay"),
            (ymd(2026, 11, 11), "veteransDay"),
            (ymd(2026, 11, 26), "thanksgiving"),
            (ymd(2026, 12, 25), "christmasDay"),
            (ymd(2027, 6, 18), "juneteenth"),
            (ymd(2027, 7, 5), "independenceDay"),
            (ymd(2027, 12, 24), "christmasDay"),
            (ymd(2027, 12, 31), "newYearsDay"),
            (ymd(2028, 11, 10), "veteransDay"),
        ] {
            assert_eq!(cal.holiday(d), Some(name), "{d}");
            assert!(!cal.is_business_day(d), "{d}");
        }
        // Not federal holidays: Good Friday, the day after Thanksgiving, Election Day, a state's holiday.
        for d in [
            ymd(2026, 4, 3),
            ymd(2026, 11, 27),
            ymd(2026, 11, 3),
            ymd(2026, 7, 24),
        ] {
            assert!(cal.is_business_day(d), "{d}");
        }
        // A Saturday holiday is not also a business-day loss on the Monday (federal rule, not Rhode Island's).
        assert!(cal.is_business_day(ymd(2026, 7, 6)));
        assert!(!cal.is_business_day(ymd(2026, 7, 4)));
    }

    #[test]
    fn the_ten_business_days_across_weekends_and_holidays() {
        let cal = BusinessCalendar::federal();
        // Received Monday 2 November 2026: Veterans Day (Wednesday 11) is skipped: the tenth is Tuesday 17.
        assert_eq!(
            cal.nth_business_day_after(ymd(2026, 11, 2), 10),
            ymd(2026, 11, 17)
        );
        // Thanksgiving week: received Friday 20 November, Thursday 26 off: the tenth is Monday 7 December.
        assert_eq!(
            cal.nth_business_day_after(ymd(2026, 11, 20), 10),
            ymd(2026, 12, 7)
        );
        // Received on a Saturday: counting starts Monday.
        assert_eq!(
            cal.nth_business_day_after(ymd(2026, 3, 14), 1),
            ymd(2026, 3, 16)
        );
        assert_eq!(
            cal.nth_business_day_after(ymd(2026, 3, 14), 10),
            ymd(2026, 3, 27)
        );
        assert_eq!(
            cal.nth_business_day_after(ymd(2026, 3, 14), 0),
            ymd(2026, 3, 14)
        );
        assert_eq!(
            cal.business_days_after(ymd(2026, 3, 14), ymd(2026, 3, 27)),
            10
        );
        assert_eq!(
            cal.business_days_after(ymd(2026, 3, 27), ymd(2026, 3, 14)),
            0
        );
        assert_eq!(
            cal.business_days_after(ymd(2026, 3, 16), ymd(2026, 3, 16)),
            0
        );
    }

    #[test]
    fn year_ends() {
        let cal = BusinessCalendar::federal();
        // Received Thursday 24 December 2026: Christmas (Fri 25) and New Year's Day (Fri 1 Jan) off.
        assert_eq!(
            cal.nth_business_day_after(ymd(2026, 12, 24), 10),
            ymd(2027, 1, 11)
        );
        // Received Thursday 23 December 2027: Friday 24 (Christmas on a Saturday) and Friday 31 (New Year's Day
        // 2028 on a Saturday, observed in the year before) off.
        assert_eq!(
            cal.nth_business_day_after(ymd(2027, 12, 23), 10),
            ymd(2028, 1, 10)
        );
        assert_eq!(
            cal.business_days_after(ymd(2027, 12, 23), ymd(2028, 1, 10)),
            10
        );
        // Received 31 December 2021 (itself the observed New Year's Day 2022).
        assert_eq!(cal.holiday(ymd(2021, 12, 31)), Some("newYearsDay"));
        assert_eq!(
            cal.nth_business_day_after(ymd(2021, 12, 30), 1),
            ymd(2022, 1, 3)
        );
    }

    #[test]
    fn deadlines_are_local_days_across_daylight_saving() {
        let cal = BusinessCalendar::federal();
        // Friday 23 October 2026, 14:00 New York (EDT): the tenth business day is Friday 6 November, after the
        // change to EST on 1 November: the deadline is midnight EST, 05:00 UTC.
        let received = at("2026-10-23T18:00:00Z");
        assert_eq!(cal.deadline(received), at("2026-11-07T05:00:00Z"));
        // The same instant's date is the 23rd in New York; 23:30 EDT on the 23rd is already the 24th in UTC.
        let late = at("2026-10-24T03:30:00Z");
        assert_eq!(cal.local_date(late), ymd(2026, 10, 23));
        assert_eq!(cal.deadline(late), at("2026-11-07T05:00:00Z"));
        // Received Saturday 7 March 2026 (EST), tenth business day Friday 20 March (EDT): midnight EDT is 04:00 UTC.
        assert_eq!(
            cal.deadline(at("2026-03-07T12:00:00Z")),
            at("2026-03-21T04:00:00Z")
        );
        // 01:30 on the night clocks go back (1 November 2026) happens twice; both are Sunday 1 November.
        assert_eq!(cal.local_date(at("2026-11-01T05:30:00Z")), ymd(2026, 11, 1));
        assert_eq!(cal.local_date(at("2026-11-01T06:30:00Z")), ymd(2026, 11, 1));
        // Elapsed: received Friday 23 October, verified Friday 6 November 23:59 EST: 10, in time; a minute later: 11.
        assert_eq!(cal.elapsed(received, at("2026-11-07T04:59:00Z")), 10);
        assert_eq!(cal.elapsed(received, at("2026-11-07T05:00:00Z")), 10);
        assert_eq!(
            cal.elapsed(received, at("2026-11-09T15:00:00Z")),
            11,
            "Monday 9 November is the eleventh"
        );
        // In UTC the same instants fall on other days.
        let utc = cal.in_zone(chrono_tz::UTC);
        assert_eq!(utc.local_date(late), ymd(2026, 10, 24));
        assert_eq!(utc.deadline(late), at("2026-11-07T00:00:00Z"));
    }

    #[test]
    fn dates_outside_the_precomputed_years_follow_the_same_rules() {
        let cal = BusinessCalendar::federal();
        // 2301: Independence Day is a Wednesday.
        assert_eq!(cal.holiday(ymd(2301, 7, 4)), Some("independenceDay"));
        assert_eq!(
            cal.business_days_after(ymd(2299, 12, 1), ymd(2301, 2, 1)),
            day_by_day(cal, ymd(2299, 12, 1), ymd(2301, 2, 1))
        );
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        fn date() -> impl Strategy<Value = NaiveDate> {
            // 1990-01-01 .. 2100-12-31.
            (0i64..40_541).prop_map(|k| ymd(1990, 1, 1) + chrono::Duration::days(k))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(
                std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512)
            ))]

            #[test]
            fn the_count_equals_a_plain_day_by_day_count(from in date(), span in 0i64..800) {
                let cal = BusinessCalendar::federal();
                let to = from + chrono::Duration::days(span);
                prop_assert_eq!(cal.business_days_after(from, to), day_by_day(cal, from, to));
            }

            #[test]
            fn the_nth_business_day_is_the_nth_found_walking(from in date(), n in 0u32..300) {
                let cal = BusinessCalendar::federal();
                let mut d = from;
                let mut left = n;
                while left > 0 {
                    d = d.succ_opt().unwrap();
                    if d.weekday().num_days_from_monday() < 5 && cal.holiday(d).is_none() {
                        left -= 1;
                    }
                }
                prop_assert_eq!(cal.nth_business_day_after(from, n), d);
                prop_assert_eq!(cal.business_days_after(from, d), n);
            }

            #[test]
            fn a_request_verified_before_its_deadline_took_at_most_ten(
                received_secs in 631_152_000i64..4_102_444_800, after_secs in 0i64..(40 * 86_400)
            ) {
                let cal = BusinessCalendar::federal();
                let received = DateTime::from_timestamp(received_secs, 0).unwrap();
                let verified = received + chrono::Duration::seconds(after_secs);
                let deadline = cal.deadline(received);
                prop_assert!(deadline > received);
                // In time exactly when verified on or before the tenth business day's date (a verification on the
                // weekend after it is late, though no eleventh business day has begun: the strict reading).
                let tenth = cal.nth_business_day_after(cal.local_date(received), DEADLINE_BUSINESS_DAYS);
                prop_assert_eq!(verified < deadline, cal.local_date(verified) <= tenth);
                if verified < deadline {
                    prop_assert!(cal.elapsed(received, verified) <= DEADLINE_BUSINESS_DAYS);
                } else {
                    prop_assert!(cal.elapsed(received, verified) >= DEADLINE_BUSINESS_DAYS);
                }
            }
        }
    }
}
