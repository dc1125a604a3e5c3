//! The calling-hours decision at the edges: each US zone's first and last minutes, daylight-saving days, split area
//! codes, Sundays, holidays, Canada, numbers with no place, address states.

use chrono::{DateTime, Utc};

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn decide(number: &str, state: Option<&str>, at: &str) -> HoursDecision<'static> {
    Policy::embedded().decide(E164::parse(number).unwrap(), state, utc(at))
}

fn zones(d: &HoursDecision) -> Vec<&'static str> {
    d.time_zones.iter().map(|z| z.name()).collect()
}

fn reason(d: &HoursDecision) -> String {
    d.reason.map(|r| r.to_string()).unwrap_or_default()
}

fn span(w: Option<Window>) -> (String, String) {
    let w = w.unwrap();
    (w.start.to_rfc3339(), w.end.to_rfc3339())
}

/// `callableNow` and `nextCallableAt` at an instant.
fn answer(number: &str, at: &str) -> (bool, Option<DateTime<Utc>>) {
    let d = decide(number, None, at);
    (d.callable_now, d.next_callable_at)
}

#[test]
fn the_federal_window_opens_at_eight_and_closes_at_nine_in_every_us_zone() {
    // Wednesday 9 December 2026 (standard time everywhere), a number in a state with no rule of its own per zone.
    let cases = [
        ("+12025550198", "-05:00", "America/New_York"), // DC
        ("+13125550198", "-06:00", "America/Chicago"),  // Illinois
        ("+13035550198", "-07:00", "America/Denver"),   // Colorado
        ("+16025550198", "-07:00", "America/Phoenix"),  // Arizona
        ("+14155550198", "-08:00", "America/Los_Angeles"), // California
        ("+19072095555", "-09:00", "America/Juneau"),   // Alaska, an exchange libphonenumber places
        ("+18085550198", "-10:00", "Pacific/Honolulu"), // Hawaii
    ];
    for (number, offset, zone) in cases {
        let local = |t: &str| format!("2026-12-09T{t}:00{offset}");
        let d = decide(number, None, &local("07:59"));
        assert_eq!(zones(&d), [zone], "{number}");
        assert!(!d.callable_now, "{number} at 07:59: {d:?}");
        assert_eq!(d.next_callable_at, Some(utc(&local("08:00"))), "{number}");
        assert!(reason(&d).contains("outside calling hours"), "{d:?}");
        assert_eq!(
            answer(number, &local("08:00")),
            (true, Some(utc(&local("08:00")))),
            "{number}"
        );
        let late = decide(number, None, &local("20:59"));
        assert!(late.callable_now, "{number} at 20:59");
        assert_eq!(span(late.window), (local("08:00"), local("21:00")));
        assert_eq!(late.window.unwrap().time_zone.name(), zone);
        let closed = decide(number, None, &local("21:00"));
        assert!(!closed.callable_now, "{number} at 21:00");
        assert_eq!(
            closed.next_callable_at,
            Some(utc(&format!("2026-12-10T08:00:00{offset}")))
        );
    }
}

#[test]
fn daylight_saving_days_use_the_zone_rules_not_fixed_offsets() {
    // Spring forward: Sunday 8 March 2026, 02:00 EST → 03:00 EDT. 08:00 that morning is 12:00 UTC, not 13:00.
    let dc = "+12025550198";
    assert_eq!(
        answer(dc, "2026-03-08T11:59:00Z"),
        (false, Some(utc("2026-03-08T12:00:00Z")))
    );
    assert!(answer(dc, "2026-03-08T12:00:00Z").0);
    // The evening before (Saturday 21:00 EST = 02:00 UTC Sunday) the next window is Sunday 08:00 EDT.
    assert_eq!(
        answer(dc, "2026-03-08T02:00:00Z"),
        (false, Some(utc("2026-03-08T12:00:00Z")))
    );
    // Sunday closes at 21:00 EDT = 01:00 UTC Monday.
    assert!(answer(dc, "2026-03-09T00:59:00Z").0);
    assert!(!answer(dc, "2026-03-09T01:00:00Z").0);
    // Fall back: Sunday 1 November 2026, 02:00 EDT → 01:00 EST. 08:00 is 13:00 UTC; at 12:30 UTC it is 07:30 EST
    // (a fixed EDT offset would say 08:30).
    assert_eq!(
        answer(dc, "2026-11-01T12:30:00Z"),
        (false, Some(utc("2026-11-01T13:00:00Z")))
    );
    assert!(answer(dc, "2026-11-01T13:00:00Z").0);
    // Arizona keeps standard time all year: 08:00 MST is 15:00 UTC in summer too.
    assert!(!answer("+16025550198", "2026-07-15T14:59:00Z").0);
    assert!(answer("+16025550198", "2026-07-15T15:00:00Z").0);
}

#[test]
fn a_split_area_code_is_callable_only_while_every_zone_allows_it() {
    // 208-202: libphonenumber says Boise (Mountain) or Los Angeles (Pacific), under a block whose other exchanges
    // are Denver: every zone of 208. 08:30 Mountain is 07:30 Pacific.
    let idaho = "+12082025555";
    let d = decide(idaho, None, "2026-12-09T08:30:00-07:00");
    assert_eq!(
        zones(&d),
        ["America/Boise", "America/Denver", "America/Los_Angeles"]
    );
    assert!(!d.callable_now);
    assert!(reason(&d).contains("America/Los_Angeles"), "{d:?}");
    assert_eq!(d.next_callable_at, Some(utc("2026-12-09T08:00:00-08:00")));
    // The evening closes with the Mountain zone: 21:00 MST is 20:00 PST.
    assert!(!decide(idaho, None, "2026-12-09T20:30:00-08:00").callable_now);
    assert_eq!(
        span(decide(idaho, None, "2026-12-09T12:00:00-08:00").window),
        (
            "2026-12-09T09:00:00-07:00".to_string(),
            "2026-12-09T21:00:00-07:00".to_string()
        )
    );
    // An overlay libphonenumber puts in one zone (364 over 270, Kentucky) gets both of its parent's.
    let overlay = decide("+13645550100", None, "2026-12-09T10:30:00-05:00");
    assert_eq!(zones(&overlay), ["America/Chicago", "America/New_York"]);
    assert!(
        !overlay.callable_now,
        "10:30 Eastern is 09:30 Central, before Kentucky's 10:00: {overlay:?}"
    );
    // Alaska's area code maps to Adak and Anchorage: Anchorage 08:00 is Adak 07:00.
    let alaska = decide("+19075550100", None, "2026-12-09T08:30:00-09:00");
    assert!(!alaska.callable_now);
    assert_eq!(
        alaska.next_callable_at,
        Some(utc("2026-12-09T09:00:00-09:00"))
    );
}

#[test]
fn sundays_and_holidays_close_the_states_that_say_so() {
    // Alabama: no calls on Sunday 6 December 2026; Monday 08:00 Central next.
    let d = decide("+12055550100", None, "2026-12-06T12:00:00-06:00");
    assert!(!d.callable_now);
    assert_eq!(reason(&d), "no calls on Sun under US-AL (America/Chicago)");
    assert_eq!(d.next_callable_at, Some(utc("2026-12-07T08:00:00-06:00")));
    // Federal rules alone allow the same hour in a neighbouring state.
    assert!(decide("+13125550198", None, "2026-12-06T12:00:00-06:00").callable_now);
    // Rhode Island on Thanksgiving (26 November 2026): closed; Friday 09:00 next.
    let d = decide("+14015550100", None, "2026-11-26T12:00:00-05:00");
    assert_eq!(
        reason(&d),
        "no calls on thanksgiving under US-RI (America/New_York)"
    );
    assert_eq!(d.next_callable_at, Some(utc("2026-11-27T09:00:00-05:00")));
    // Utah on Christmas Day (Friday 25 December 2026), then Saturday from 08:00.
    let d = decide("+18015550100", None, "2026-12-25T10:00:00-07:00");
    assert!(!d.callable_now);
    assert_eq!(d.next_callable_at, Some(utc("2026-12-26T08:00:00-07:00")));
    // Independence Day 2026 is a Saturday, observed Friday 3 July: Alabama is closed both days and Sunday, so the
    // next call is Monday 6 July.
    let d = decide("+12055550100", None, "2026-07-03T12:00:00-05:00");
    assert_eq!(d.next_callable_at, Some(utc("2026-07-06T08:00:00-05:00")));
    // Rhode Island's Saturday window is 10:00-17:00; Texas opens at noon on Sundays.
    assert!(!decide("+14015550100", None, "2026-12-05T09:59:00-05:00").callable_now);
    assert!(decide("+14015550100", None, "2026-12-05T16:59:00-05:00").callable_now);
    assert!(!decide("+14015550100", None, "2026-12-05T17:00:00-05:00").callable_now);
    assert!(!decide("+15125550100", None, "2026-12-06T11:59:00-06:00").callable_now);
    assert!(decide("+15125550100", None, "2026-12-06T12:00:00-06:00").callable_now);
}

#[test]
fn canada_follows_the_crtc_hours() {
    let toronto = "+14165550100";
    let d = decide(toronto, None, "2026-12-09T21:29:00-05:00");
    assert!(d.callable_now);
    assert_eq!(d.jurisdictions, ["CA"]);
    assert!(!decide(toronto, None, "2026-12-09T21:30:00-05:00").callable_now);
    assert!(!decide(toronto, None, "2026-12-09T08:59:00-05:00").callable_now);
    // Weekends 10:00-18:00.
    assert!(!decide(toronto, None, "2026-12-05T09:59:00-05:00").callable_now);
    assert!(decide(toronto, None, "2026-12-05T17:59:00-05:00").callable_now);
    assert!(!decide(toronto, None, "2026-12-06T18:00:00-05:00").callable_now);
}

#[test]
fn numbers_with_no_place_get_the_most_conservative_window() {
    // A London number: every US zone from New York to Honolulu and every jurisdiction's rules. On a weekday that
    // is Honolulu's 10:00 (Kentucky) to New York's 18:00 (Rhode Island): 20:00-23:00 UTC in winter.
    for number in ["+442079460018", "+18005550100"] {
        let d = decide(number, None, "2026-12-09T20:00:00Z");
        assert!(d.callable_now, "{number}: {d:?}");
        assert!(!d.located);
        assert_eq!(d.time_zones.len(), 7);
        assert!(!decide(number, None, "2026-12-09T19:59:00Z").callable_now);
        assert!(decide(number, None, "2026-12-09T22:59:00Z").callable_now);
        let closed = decide(number, None, "2026-12-09T23:00:00Z");
        assert!(!closed.callable_now);
        assert_eq!(closed.next_callable_at, Some(utc("2026-12-10T20:00:00Z")));
    }
    // Never on a Sunday (five states forbid it).
    let sunday = decide("+442079460018", None, "2026-12-06T21:00:00Z");
    assert!(!sunday.callable_now);
    assert_eq!(sunday.next_callable_at, Some(utc("2026-12-07T20:00:00Z")));
}

#[test]
fn the_address_state_applies_as_well_as_the_area_code() {
    // A New York number at 20:30 Eastern: federal hours allow it, a Florida address does not.
    let ny = "+12125550100";
    assert!(decide(ny, None, "2026-12-09T20:30:00-05:00").callable_now);
    for state in ["FL", "fl", "US-FL"] {
        let d = decide(ny, Some(state), "2026-12-09T20:30:00-05:00");
        assert!(!d.callable_now, "{state}");
        assert!(d.jurisdictions.contains(&"US-FL"));
    }
    // And a Florida area code is presumed a Florida resident, whatever the address.
    assert!(!decide("+13055550100", Some("NY"), "2026-12-09T20:30:00-05:00").callable_now);
    // A state code nobody uses is an error, never a state without rules.
    let d = decide(ny, Some("FK"), "2026-12-09T12:00:00-05:00");
    assert!(!d.callable_now);
    assert_eq!(d.next_callable_at, None);
    assert!(reason(&d).contains("unknown address state"));
}

#[test]
fn a_policy_that_never_allows_a_call_answers_none_within_the_horizon() {
    let mut doc: serde_json::Value = serde_json::from_str(EMBEDDED_POLICY).unwrap();
    doc["jurisdictions"]["US-DC"] = serde_json::json!({"weekday": null, "saturday": null, "sunday": null,
        "source": "test", "confidence": "reported"});
    let policy = Policy::from_json(&doc.to_string()).unwrap();
    let d = policy.decide(
        E164::parse("+12025550198").unwrap(),
        None,
        utc("2026-12-09T15:00:00Z"),
    );
    assert!(!d.callable_now);
    assert_eq!((d.next_callable_at, d.window), (None, None));
}

#[test]
fn an_unlisted_exchange_of_a_split_area_code_is_called_only_inside_every_zone_of_it() {
    // (number, local instant in the zone libphonenumber alone would answer, why it is not callable then, when the
    // call may be made). Wednesday 9 December 2026, standard time; Wednesday 8 July 2026 for daylight time.
    let cases = [
        // Eastern by default, the area code also Central: 08:00 Eastern is 07:00 Central.
        (
            "+12705550100",
            "2026-12-09T10:30:00-05:00",
            "2026-12-09T10:00:00-06:00",
        ), // KY opens at 10:00
        (
            "+16065550100",
            "2026-12-09T10:30:00-05:00",
            "2026-12-09T10:00:00-06:00",
        ),
        (
            "+18505550100",
            "2026-12-09T08:00:00-05:00",
            "2026-12-09T08:00:00-06:00",
        ),
        (
            "+12195550100",
            "2026-12-09T08:00:00-05:00",
            "2026-12-09T08:00:00-06:00",
        ),
        (
            "+15745550100",
            "2026-12-09T08:00:00-05:00",
            "2026-12-09T08:00:00-06:00",
        ),
        (
            "+18125550100",
            "2026-12-09T08:00:00-05:00",
            "2026-12-09T08:00:00-06:00",
        ),
        (
            "+19065550100",
            "2026-12-09T09:00:00-05:00",
            "2026-12-09T09:00:00-06:00",
        ), // MI opens at 09:00
        // Central by default, the area code also Eastern: 20:30 Central is 21:30 Eastern.
        (
            "+14235550100",
            "2026-12-09T20:30:00-06:00",
            "2026-12-10T08:00:00-06:00",
        ),
        // Central by default, the area code also Mountain: 08:00 Central is 07:00 Mountain.
        (
            "+16205550100",
            "2026-12-09T08:00:00-06:00",
            "2026-12-09T08:00:00-07:00",
        ),
        (
            "+17855550100",
            "2026-12-09T08:00:00-06:00",
            "2026-12-09T08:00:00-07:00",
        ),
        (
            "+13085550100",
            "2026-12-09T08:00:00-06:00",
            "2026-12-09T08:00:00-07:00",
        ),
        // Pacific by default, Malheur County on Mountain time: 20:30 Pacific is 21:30 Mountain; 08:00 Pacific next.
        (
            "+15415550100",
            "2026-12-09T20:30:00-08:00",
            "2026-12-10T08:00:00-08:00",
        ),
        // Arizona keeps standard time, the Navajo Nation observes daylight time: in July 08:00 Phoenix is 09:00
        // Navajo, and 20:30 Phoenix is 21:30 there: 08:00-20:00 Phoenix time.
        (
            "+19285550100",
            "2026-07-08T20:30:00-07:00",
            "2026-07-09T08:00:00-07:00",
        ),
    ];
    for (number, at, next) in cases {
        let d = decide(number, None, at);
        assert!(!d.callable_now, "{number} at {at}: {d:?}");
        assert_eq!(d.next_callable_at, Some(utc(next)), "{number} at {at}");
        assert!(d.time_zones.len() >= 2, "{number}: {:?}", zones(&d));
        // And inside both windows it is callable.
        assert!(
            decide(number, None, next).callable_now,
            "{number} at {next}"
        );
    }
    // An exchange libphonenumber lists keeps its one zone: 850-230 is Central, callable at 08:00 Central.
    assert!(decide("+18502300100", None, "2026-12-09T08:00:00-06:00").callable_now);
}

#[test]
fn the_address_state_adds_its_zones() {
    // A Manhattan number with a California address: 08:00 Eastern is 05:00 Pacific.
    let ny = "+12125550100";
    assert!(decide(ny, None, "2026-12-09T08:00:00-05:00").callable_now);
    let d = decide(ny, Some("CA"), "2026-12-09T08:00:00-05:00");
    assert!(!d.callable_now, "{d:?}");
    assert_eq!(zones(&d), ["America/New_York", "America/Los_Angeles"]);
    assert_eq!(d.next_callable_at, Some(utc("2026-12-09T08:00:00-08:00")));
    // The evening closes with New York: 21:00 Eastern is 18:00 Pacific.
    assert!(!decide(ny, Some("CA"), "2026-12-09T21:00:00-05:00").callable_now);
    // The window is written in the number's zone.
    assert_eq!(
        span(decide(ny, Some("CA"), "2026-12-09T12:00:00-05:00").window),
        (
            "2026-12-09T11:00:00-05:00".to_string(),
            "2026-12-09T21:00:00-05:00".to_string()
        )
    );
    // An address in a state of two zones adds both: a Los Angeles number with a Florida address is held to
    // 08:00-20:00 in Eastern and Central time, and Pacific.
    let d = decide("+13105550100", Some("FL"), "2026-12-09T17:30:00-08:00");
    assert_eq!(
        zones(&d),
        ["America/Los_Angeles", "America/Chicago", "America/New_York"]
    );
    assert!(!d.callable_now, "20:30 Eastern: {d:?}");
    // A state in the number's own zone changes nothing.
    assert_eq!(
        zones(&decide(ny, Some("NJ"), "2026-12-09T12:00:00-05:00")),
        ["America/New_York"]
    );
}

fn closure(id: &str, jurisdiction: &str, start: &str, end: &str) -> Closure {
    Closure {
        id: id.into(),
        jurisdiction: jurisdiction.into(),
        start: utc(start),
        end: utc(end),
        reason: "state of emergency declared".into(),
        source: "https://gov.louisiana.gov/".into(),
        added_at: None,
    }
}

#[test]
fn an_operator_closure_ends_the_window_and_moves_the_next_call_to_its_end() {
    let p = Policy::embedded();
    let decide_at = |number: &str, at: &str, closures: &'static [Closure]| {
        p.decide_with(E164::parse(number).unwrap(), None, utc(at), None, closures)
    };
    // Louisiana, Wednesday 9 December 2026: closed from 14:00 Central until Thursday noon.
    static CLOSURES: LazyLock<Vec<Closure>> = LazyLock::new(|| {
        vec![closure(
            "la-emergency",
            "US-LA",
            "2026-12-09T14:00:00-06:00",
            "2026-12-10T12:00:00-06:00",
        )]
    });
    let new_orleans = "+15045550100";
    // Before it starts: callable, and the window ends when it starts.
    let d = decide_at(new_orleans, "2026-12-09T10:00:00-06:00", &CLOSURES);
    assert!(d.callable_now);
    assert_eq!(
        span(d.window),
        (
            "2026-12-09T08:00:00-06:00".to_string(),
            "2026-12-09T14:00:00-06:00".to_string()
        )
    );
    // Mid-window it starts: not callable, the next call at its end, the window from there to 20:00.
    let d = decide_at(new_orleans, "2026-12-09T14:00:00-06:00", &CLOSURES);
    assert!(!d.callable_now);
    assert_eq!(d.next_callable_at, Some(utc("2026-12-10T12:00:00-06:00")));
    assert_eq!(
        span(d.window),
        (
            "2026-12-10T12:00:00-06:00".to_string(),
            "2026-12-10T20:00:00-06:00".to_string()
        )
    );
    assert_eq!(
        reason(&d),
        "closed under US-LA until 2026-12-10T18:00:00Z (closure la-emergency: state of emergency declared)"
    );
    // Without the closure the same instant is callable; a number elsewhere is not touched by it.
    assert!(decide(new_orleans, None, "2026-12-09T14:00:00-06:00").callable_now);
    assert!(decide_at("+12125550100", "2026-12-09T15:00:00-05:00", &CLOSURES).callable_now);
    // A New York number with a Louisiana address is.
    let ny_la = p.decide_with(
        E164::parse("+12125550100").unwrap(),
        Some("LA"),
        utc("2026-12-09T16:00:00-05:00"),
        None,
        &CLOSURES,
    );
    assert!(!ny_la.callable_now, "{ny_la:?}");
    // A number with no place may be in Louisiana: every closure applies.
    assert!(!decide_at("+442079460018", "2026-12-09T21:00:00Z", &CLOSURES).callable_now);
    // A closure of every jurisdiction, and one longer than the horizon: no call within it.
    static ALL: LazyLock<Vec<Closure>> = LazyLock::new(|| {
        vec![closure(
            "all",
            "*",
            "2026-12-01T00:00:00Z",
            "2027-01-31T00:00:00Z",
        )]
    });
    let d = decide_at("+12125550100", "2026-12-09T15:00:00-05:00", &ALL);
    assert!(!d.callable_now);
    assert_eq!((d.next_callable_at, d.window), (None, None));
    assert!(reason(&d).contains("closure all"), "{d:?}");
}

#[test]
fn closures_documents_are_checked() {
    let p = Policy::embedded();
    let good = closures::ClosuresFile {
        closures: vec![closure(
            "a",
            "US-LA",
            "2026-12-09T14:00:00Z",
            "2026-12-10T14:00:00Z",
        )],
    };
    let bytes = good.to_json();
    assert_eq!(closures::ClosuresFile::from_json(&bytes, p).unwrap(), good);
    let loaded = closures::LoadedClosures::from_bytes(Some(&bytes), p).unwrap();
    assert!(loaded.version.starts_with("sha256:"));
    let bad = |f: &dyn Fn(&mut Closure)| {
        let mut doc = good.clone();
        f(&mut doc.closures[0]);
        closures::ClosuresFile::from_json(&doc.to_json(), p)
            .unwrap_err()
            .to_string()
    };
    assert!(bad(&|c| c.jurisdiction = "US-XX".into()).contains("no jurisdiction \"US-XX\""));
    assert!(bad(&|c| c.end = c.start).contains("ends before it starts"));
    assert!(bad(&|c| c.source = "the governor said so".into()).contains("URL"));
    assert!(bad(&|c| c.reason = " ".into()).contains("reason"));
    let mut twice = good.clone();
    twice.closures.push(good.closures[0].clone());
    assert!(closures::ClosuresFile::from_json(&twice.to_json(), p)
        .unwrap_err()
        .to_string()
        .contains("unique"));
    assert!(closures::ClosuresFile::from_json(b"{\"closures\": 3}", p).is_err());
    // Unreadable: nothing is callable.
    let none = closures::LoadedClosures::unreadable("access denied");
    let d = p.decide_with(
        E164::parse("+12125550100").unwrap(),
        None,
        utc("2026-12-09T15:00:00-05:00"),
        None,
        &none.closures,
    );
    assert!(!d.callable_now);
    assert!(reason(&d).contains("could not be read"), "{d:?}");
}

#[test]
fn the_kind_of_call_selects_the_rules_that_apply_and_unsaid_is_the_strictest() {
    let p = Policy::embedded();
    let ask = |number: &str, at: &str, kind: Option<CallType>| {
        p.decide_with(E164::parse(number).unwrap(), None, utc(at), kind, &[])
    };
    use CallType::{Autodialed, Live, Prerecorded};
    // South Dakota: live calls keep the federal hours; autodialed and prerecorded calls weekdays 09:00-21:00 only.
    let sioux_falls = "+16055550100";
    let saturday_noon = "2026-12-05T12:00:00-06:00";
    assert!(ask(sioux_falls, saturday_noon, Some(Live)).callable_now);
    for kind in [Some(Autodialed), Some(Prerecorded), None] {
        let d = ask(sioux_falls, saturday_noon, kind);
        assert!(!d.callable_now, "{kind:?}: {d:?}");
        assert_eq!(
            reason(&d),
            format!(
                "no calls on Sat under US-SD {} calls (America/Chicago)",
                kind.unwrap_or(Autodialed).as_str()
            )
        );
        // Monday 09:00 in every zone of 605 (Central and Mountain): 10:00 Central.
        assert_eq!(
            d.next_callable_at,
            Some(utc("2026-12-07T09:00:00-07:00")),
            "{kind:?}"
        );
    }
    // Oklahoma: prerecorded calls from 09:00, live and autodialed from 08:00; unsaid, 09:00.
    let tulsa = "+19185550100";
    let early = "2026-12-09T08:30:00-06:00";
    assert!(ask(tulsa, early, Some(Live)).callable_now);
    assert!(ask(tulsa, early, Some(Autodialed)).callable_now);
    assert!(!ask(tulsa, early, Some(Prerecorded)).callable_now);
    let unsaid = ask(tulsa, early, None);
    assert!(!unsaid.callable_now);
    assert_eq!(
        unsaid.next_callable_at,
        Some(utc("2026-12-09T09:00:00-06:00"))
    );
    // Elsewhere the kind changes nothing.
    assert!(ask("+12125550100", "2026-12-05T08:30:00-05:00", None).callable_now);
    // A number with no place gets every kind's rules when the kind is unsaid: still 20:00 UTC on a winter weekday.
    assert!(ask("+442079460018", "2026-12-09T20:00:00Z", None).callable_now);
    assert_eq!("autodialed".parse::<CallType>(), Ok(Autodialed));
    assert!("robocall".parse::<CallType>().is_err());
}
