//! Number → candidate IANA time zones for North American numbers: libphonenumber's time-zone metadata, generated into
//! `shared/data/nanp_timezones.csv` by `scripts/gen_timezones.py` and looked up by longest prefix as libphonenumber
//! does (`time_zones_for_geographical_number`), with the rows the script marks: corrections of libphonenumber's errors
//! (`correction:`), every zone of a split area code for the exchanges libphonenumber does not list, and area codes
//! NANPA says span zones that libphonenumber maps to one only (`override:`). A state's zones are every zone of its
//! area codes ([`zones_of_subdivision`]): a contact's address joins them to the number's.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono_tz::Tz;

use crate::phone::{tables, E164};

const TABLE_CSV: &str = include_str!("../../data/nanp_timezones.csv");

/// The longest key of the table: `1NPANXXX` (a block of a thousand where an exchange mixes mobile and fixed lines).
const LONGEST_PREFIX: u32 = 8;

/// The candidate zones of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zones {
    /// Every zone the number may be in, as libphonenumber names them.
    pub zones: &'static [Tz],
    /// Whether the zones come from the number's area code or exchange. A number matched only by the country code
    /// (toll-free, an area code with no time-zone data) has no place: `zones` is then every NANP zone.
    pub located: bool,
}

struct Table {
    /// `(prefix length << 27) | prefix value` → index into `sets`, and whether the row places the number.
    by_prefix: HashMap<u32, (usize, bool)>,
    sets: Vec<Box<[Tz]>>,
    /// Per area code: whether the table has keys longer than `1NPA` under it. Most area codes have none, and their
    /// numbers skip the four longer lookups (this is on the path of every checked number).
    deeper: Box<[bool; 1000]>,
    /// ISO 3166-2 subdivision → every zone named by a located row of its area codes, sorted by name.
    by_subdivision: HashMap<&'static str, Box<[Tz]>>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let mut table = Table {
        by_prefix: HashMap::new(),
        sets: Vec::new(),
        deeper: Box::new([false; 1000]),
        by_subdivision: HashMap::new(),
    };
    let mut by_subdivision: HashMap<&'static str, Vec<Tz>> = HashMap::new();
    for line in TABLE_CSV.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let mut fields = line.split(',');
        let (Some(prefix), Some(zones), Some(source)) =
            (fields.next(), fields.next(), fields.next())
        else {
            panic!("nanp_timezones.csv: bad row {line:?}");
        };
        let set: Box<[Tz]> = zones
            .split('|')
            .map(|z| {
                z.parse::<Tz>()
                    .unwrap_or_else(|_| panic!("nanp_timezones.csv: unknown zone {z:?}"))
            })
            .collect();
        let value: u32 = prefix.parse().expect("nanp_timezones.csv: bad prefix");
        if prefix.len() > 4 {
            table.deeper[prefix[1..4]
                .parse::<usize>()
                .expect("nanp_timezones.csv: bad prefix")] = true;
        }
        // The country code alone, and the blocks libphonenumber types as mobile (non-geographic) outside the US and
        // Canada, answer every NANP zone: no place.
        let located = prefix.len() > 1 && !source.contains("non-geographic");
        let subdivision = prefix
            .get(1..4)
            .and_then(|npa| npa.parse::<u16>().ok())
            .and_then(tables::npa)
            .and_then(|info| info.subdivision);
        if let (true, Some(sub)) = (located, subdivision) {
            let all = by_subdivision.entry(sub).or_default();
            for z in set.iter() {
                if !all.contains(z) {
                    all.push(*z);
                }
            }
        }
        table
            .by_prefix
            .insert(key(prefix.len() as u32, value), (table.sets.len(), located));
        table.sets.push(set);
    }
    table.by_subdivision = by_subdivision
        .into_iter()
        .map(|(sub, mut zones)| {
            zones.sort_by_key(|z| z.name());
            (sub, zones.into_boxed_slice())
        })
        .collect();
    table
});

fn key(len: u32, value: u32) -> u32 {
    (len << 27) | value
}

/// The candidate zones of a North American number (`+1` and ten digits), or `None` for any other number.
pub fn zones_for(number: E164) -> Option<Zones> {
    number.nanp_national()?;
    let table = &*TABLE;
    let npa = ((number.packed() / 10_000_000) % 1000) as usize;
    let longest = if table.deeper[npa] { LONGEST_PREFIX } else { 4 };
    for len in (1..=longest).rev() {
        let value = (number.packed() / 10u64.pow(11 - len)) as u32;
        if let Some(&(i, located)) = table.by_prefix.get(&key(len, value)) {
            return Some(Zones {
                zones: &table.sets[i],
                located,
            });
        }
    }
    None
}

/// Every zone of a state or province (`US-FL`, `CA-ON`): the zones of every area code that serves it, so a contact
/// whose address is there is judged in each. `None` for a subdivision no area code serves alone.
pub fn zones_of_subdivision(subdivision: &str) -> Option<&'static [Tz]> {
    TABLE.by_subdivision.get(subdivision).map(|z| &z[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &str) -> Vec<&'static str> {
        zones_for(E164::parse(n).unwrap())
            .unwrap()
            .zones
            .iter()
            .map(|z| z.name())
            .collect()
    }

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(names("+12025550198"), ["America/New_York"]);
        // 208 has no area-code row: its exchanges decide (208-201 is Mountain).
        assert_eq!(names("+12082015555"), ["America/Denver"]);
        // Alaska's area code: every zone of it for an exchange libphonenumber does not list.
        assert_eq!(
            names("+19075550100"),
            ["America/Adak", "America/Anchorage", "America/Juneau"]
        );
        // An overlay libphonenumber maps to one zone gets its parent's two.
        assert_eq!(
            names("+13645550100"),
            ["America/Chicago", "America/New_York"]
        );
        let toll_free = zones_for(E164::parse("+18005550100").unwrap()).unwrap();
        assert!(!toll_free.located);
        assert!(toll_free.zones.len() > 30);
        assert!(zones_for(E164::parse("+442079460018").unwrap()).is_none());
    }

    /// Every exchange 200-999 of an area code: how many the table places in each set of zones.
    fn exchanges(npa: &str) -> std::collections::BTreeMap<Vec<&'static str>, usize> {
        let mut out = std::collections::BTreeMap::new();
        for nxx in 200..1000 {
            let z = names(&format!("+1{npa}{nxx}0100"));
            *out.entry(z).or_default() += 1;
        }
        out
    }

    /// (area code, an exchange libphonenumber does not list, its zones, a listed exchange, its zones).
    type Case<'a> = (&'a str, &'a str, Vec<&'a str>, &'a str, Vec<&'a str>);

    /// The area codes the compliance review named (issue 28): libphonenumber answers one zone for every exchange it
    /// does not list, though the area code spans two. Each such exchange now gets both; the listed ones keep theirs.
    #[test]
    fn split_area_codes_give_every_zone_to_unlisted_exchanges() {
        let (e, c, m, p, az) = (
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Los_Angeles",
            "America/Phoenix",
        );
        // (area code, an exchange libphonenumber does not list, the zones it now gets, a listed exchange and its zone)
        let cases: [Case; 13] = [
            ("270", "555", vec![c, e], "684", vec![c]),
            ("606", "555", vec![c, e], "387", vec![c]),
            ("850", "555", vec![c, e], "230", vec![c]),
            ("219", "555", vec![c, e], "885", vec![c]),
            ("574", "555", vec![c, e], "772", vec![c]),
            ("812", "555", vec![c, e], "424", vec![c]),
            ("906", "555", vec![c, e], "265", vec![c]),
            ("423", "555", vec![c, e], "235", vec![e]),
            ("620", "555", vec![c, m], "376", vec![m]),
            ("785", "555", vec![c, m], "852", vec![m]),
            ("308", "555", vec![c, m], "245", vec![m]),
            ("541", "555", vec![m, p], "372", vec![m]),
            ("928", "555", vec![m, az], "871", vec![m, az]),
        ];
        for (npa, unlisted, both, listed, own) in cases {
            let mut both = both;
            both.sort();
            assert_eq!(
                names(&format!("+1{npa}{unlisted}0100")),
                both,
                "{npa}-{unlisted}"
            );
            assert_eq!(
                names(&format!("+1{npa}{listed}0100")),
                own,
                "{npa}-{listed}"
            );
            // No exchange of the area code is left with one zone unless libphonenumber lists it so.
            let counts = exchanges(npa);
            assert!(counts[&both] > 100, "{npa}: {counts:?}");
        }
        // 850: 226 exchanges listed Central, the other 574 once Eastern only, now both.
        let counts = exchanges("850");
        assert_eq!(counts[&vec![c]], 226);
        assert_eq!(counts[&vec![c, e]], 574);
        assert!(!counts.contains_key(&vec![e]));
    }

    /// Each `correction:` row of the table answers the zones it names, and each has its own assertion here.
    #[test]
    fn corrections_hold() {
        let corrections: Vec<(&str, &str)> = TABLE_CSV
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                f.get(2)
                    .filter(|s| s.starts_with("correction:"))
                    .map(|_| (f[0], f[1]))
            })
            .collect();
        // Unalaska (907-581) is on Alaska time; libphonenumber 9.0.43 says Honolulu.
        assert_eq!(corrections, [("1907581", "America/Anchorage")]);
        assert_eq!(names("+19075810100"), ["America/Anchorage"]);
        // Honolulu is no longer one of Alaska's zones through the correction.
        assert_eq!(
            zones_of_subdivision("US-AK")
                .unwrap()
                .iter()
                .map(|z| z.name())
                .collect::<Vec<_>>(),
            ["America/Adak", "America/Anchorage", "America/Juneau"]
        );
    }

    #[test]
    fn a_state_has_the_zones_of_its_area_codes() {
        let of = |s: &str| -> Vec<&str> {
            zones_of_subdivision(s)
                .unwrap()
                .iter()
                .map(|z| z.name())
                .collect()
        };
        assert_eq!(of("US-CA"), ["America/Los_Angeles"]);
        assert_eq!(of("US-FL"), ["America/Chicago", "America/New_York"]);
        assert_eq!(of("US-AZ"), ["America/Denver", "America/Phoenix"]);
        assert!(of("US-TX").contains(&"America/Denver"));
        assert!(zones_of_subdivision("US-XX").is_none());
    }
}
