//! Number → candidate IANA time zones for North American numbers: libphonenumber's time-zone metadata, generated into
//! `shared/data/nanp_timezones.csv` by `scripts/gen_timezones.py` and looked up by longest prefix as libphonenumber
//! does (`time_zones_for_geographical_number`), with the overrides the script lists for area codes NANPA says span
//! zones that libphonenumber maps to one only.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono_tz::Tz;

use crate::phone::E164;

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
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let mut table = Table {
        by_prefix: HashMap::new(),
        sets: Vec::new(),
        deeper: Box::new([false; 1000]),
    };
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
        table
            .by_prefix
            .insert(key(prefix.len() as u32, value), (table.sets.len(), located));
        table.sets.push(set);
    }
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
        assert_eq!(names("+19075550100"), ["America/Adak", "America/Anchorage"]);
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
}
