//! Differential test: dncflow's normalizer against libphonenumber on 120,000 messy inputs.
//!
//! The fixture is made by `scripts/gen_corpus.py` from the `phonenumbers` PyPI package (libphonenumber's metadata),
//! parsing every input with default region US. The compliance rule: a number libphonenumber accepts must never be
//! rejected or given another E.164. Differences in the other direction (we accept what libphonenumber rejects) are
//! allowed only when they fall into one of the explained classes below; each class is counted and printed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};

use dncflow::phone::{tables, Flags, Normalizer};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    #[serde(rename = "in")]
    input: String,
    cat: String,
    e164: Option<String>,
    region: Option<String>,
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/differential.jsonl.gz"
    );
    let file = std::fs::File::open(path).expect("fixture missing: run scripts/gen_corpus.py");
    BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|l| serde_json::from_str(&l.expect("read fixture")).expect("fixture line"))
        .collect()
}

/// Why we may accept a number libphonenumber rejects. `None`: unexplained, a failure.
fn explain(case: &Case, flags: Flags, e164: &str) -> Option<&'static str> {
    if flags.contains(Flags::UNKNOWN_AREA_CODE) {
        return Some(
            "North American area code unknown to the metadata: kept (never drop a dialable number)",
        );
    }
    if flags.contains(Flags::RECOVERED) {
        return Some("pre-cleaning recovered a spreadsheet artefact or trailing words libphonenumber cannot read");
    }
    if flags.contains(Flags::UNVERIFIED_RANGE) {
        return Some(if e164.starts_with("+1") {
            "North American number outside the US and Canada, exchange not in service: kept, flagged UNVERIFIED_RANGE"
        } else {
            "international number with a possible length for its country, outside the crate's ranges"
        });
    }
    if let Some(national) = e164.strip_prefix("+1") {
        // Only US and Canadian area codes are excused by area code: elsewhere in North America (the Caribbean, the
        // Pacific territories) a number outside libphonenumber's exchanges must carry UNVERIFIED_RANGE (above).
        let npa: u16 = national[..3].parse().ok()?;
        if tables::npa(npa).is_some_and(|i| matches!(i.country, "US" | "CA" | "NANP")) {
            return Some("US or Canadian area code, exchange outside libphonenumber's ranges for it (partial area codes)");
        }
    }
    if phonenumber::parse(None, e164).is_ok_and(|n| n.is_valid()) {
        return Some(
            "range valid in the crate's metadata (libphonenumber 9.0.33), withdrawn in 9.0.43",
        );
    }
    if case.input.trim_start().starts_with("00") {
        return Some(
            "00 international prefix read as such (libphonenumber with region US knows only 011)",
        );
    }
    None
}

fn jurisdiction_agrees(ours: &str, region: &str) -> bool {
    ours == region
        || ours.strip_prefix(region).is_some_and(|rest| rest.starts_with('-'))
        || ours == format!("US-{region}")
        // Toll-free and other non-geographic codes are tagged with the country.
        || (ours == "US" && ["CA", "US"].contains(&region))
        // Regions sharing a calling code (IT/VA, GB/JE): the crate may name the main one.
        || shared_code(ours, region)
}

fn shared_code(ours: &str, region: &str) -> bool {
    (1..1000)
        .filter_map(tables::country_code)
        .any(|cc| cc.regions.contains(&ours) && cc.regions.contains(&region))
}

#[test]
fn agrees_with_libphonenumber() {
    let normalizer = Normalizer::default();
    let cases = cases();
    assert!(cases.len() >= 100_000, "corpus too small: {}", cases.len());
    let mut failures = Vec::new();
    let mut explained: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut per_cat: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut jurisdiction_mismatch = Vec::new();
    for case in &cases {
        let ours = normalizer.normalize(&case.input);
        let slot = per_cat.entry(case.cat.clone()).or_default();
        slot.0 += 1;
        match (&case.e164, ours) {
            (Some(expected), Ok(n)) => {
                if n.e164.to_string() != *expected {
                    failures.push(format!(
                        "{:?}: libphonenumber {expected}, ours {}",
                        case.input, n.e164
                    ));
                } else if let Some(region) = &case.region {
                    if !jurisdiction_agrees(n.jurisdiction, region) {
                        jurisdiction_mismatch.push(format!(
                            "{:?}: region {region}, ours {}",
                            case.input, n.jurisdiction
                        ));
                    }
                }
                slot.1 += 1;
            }
            (Some(expected), Err(reason)) => failures.push(format!(
                "{:?}: libphonenumber {expected}, ours rejected {reason}",
                case.input
            )),
            (None, Ok(n)) => match explain(case, n.flags, &n.e164.to_string()) {
                Some(why) => *explained.entry(why).or_default() += 1,
                None => failures.push(format!(
                    "{:?}: libphonenumber rejects, ours {} (unexplained)",
                    case.input, n.e164
                )),
            },
            (None, Err(_)) => {}
        }
    }
    println!(
        "{} inputs; per category (inputs, agreed accepted):",
        cases.len()
    );
    for (cat, (n, ok)) in &per_cat {
        println!("  {cat:16} {n:7} {ok:7}");
    }
    println!("accepted by us, rejected by libphonenumber:");
    for (why, n) in &explained {
        println!("  {n:6}  {why}");
    }
    for f in failures.iter().take(40) {
        println!("FAIL {f}");
    }
    for m in jurisdiction_mismatch.iter().take(20) {
        println!("JURISDICTION {m}");
    }
    assert!(
        failures.is_empty(),
        "{} disagreements with libphonenumber (first above)",
        failures.len()
    );
    assert!(
        jurisdiction_mismatch.is_empty(),
        "{} jurisdiction mismatches",
        jurisdiction_mismatch.len()
    );
}

/// The number → time-zone table against `phonenumbers.timezone.time_zones_for_number` on a corpus made by
/// `scripts/gen_timezones.py` (one number in every area code, one under every exchange-level key, sampled
/// exchanges, toll-free codes). The only disagreements allowed are the rows the table marks: an `override:` row may
/// only widen libphonenumber's answer (the calling window is the intersection over the zones, so a wider set is
/// safer), a `correction:` row gives exactly the zones it names.
#[test]
fn time_zones_agree_with_libphonenumber() {
    let table = include_str!("../../shared/data/nanp_timezones.csv");
    // Marked rows by key: (source, zones).
    let marked: BTreeMap<&str, (&str, &str)> = table
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[2].starts_with("override:") || f[2].starts_with("correction:"))
                .then_some((f[0], (f[2], f[1])))
        })
        .collect();
    let keys: std::collections::BTreeSet<&str> = table
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert!(marked.values().any(|(s, _)| s.starts_with("override:")));
    assert!(marked.values().any(|(s, _)| s.starts_with("correction:")));
    let corpus = include_str!("../fixtures/timezones_corpus.csv");
    let (mut agree, mut widened) = (0usize, BTreeMap::<&str, usize>::new());
    let mut area_codes = std::collections::BTreeSet::new();
    let mut disagreements = Vec::new();
    for line in corpus.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let (number, theirs) = line.split_once(',').unwrap();
        let theirs: Vec<&str> = theirs.split('|').collect();
        let e164 = dncflow::phone::E164::parse(number).unwrap();
        let ours: Vec<&str> = dncflow::hours::zones::zones_for(e164)
            .map(|z| z.zones.iter().map(|tz| tz.name()).collect())
            .unwrap_or_default();
        area_codes.insert(&number[2..5]);
        if ours == theirs {
            agree += 1;
            continue;
        }
        // The row that answered: the longest key of the table the number starts with.
        let key = (1..=8)
            .rev()
            .map(|n| &number[1..1 + n])
            .find(|k| keys.contains(k))
            .unwrap();
        match marked.get(key) {
            Some((source, _))
                if source.starts_with("override:") && theirs.iter().all(|z| ours.contains(z)) =>
            {
                *widened.entry(key).or_default() += 1
            }
            Some((source, zones))
                if source.starts_with("correction:") && ours.join("|") == *zones =>
            {
                *widened.entry(key).or_default() += 1
            }
            _ => disagreements.push(format!(
                "{number}: ours {ours:?}, libphonenumber {theirs:?}"
            )),
        }
    }
    println!(
        "time zones: {agree} numbers agree, {} widened or corrected by marked rows {widened:?}, {} area codes",
        widened.values().sum::<usize>(),
        area_codes.len()
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert!(
        agree > 4000,
        "the corpus covers every area code and exchange key"
    );
    assert!(area_codes.len() >= 440, "{}", area_codes.len());
}
