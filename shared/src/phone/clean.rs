//! Pre-cleaning: what spreadsheets and exports do to a number (float zeros, formulas, scientific notation,
//! trailing words, full-width and other Unicode digits, vanity letters), undone before parsing.

use super::*;

pub(super) struct Cleaned {
    pub(super) text: String,
    pub(super) changed: bool,
}

/// Undo what spreadsheets and exports do to phone fields, and cut extensions.
pub(super) fn preclean(s: &str) -> Result<Cleaned, RejectReason> {
    let folded = fold_unicode(s);
    let mut t = folded.trim();
    let original = t;
    // ="2025550198" (Excel text formula), '2025550198 (forced text), surrounding quotes.
    if let Some(inner) = t.strip_prefix("=\"").and_then(|r| r.strip_suffix('"')) {
        t = inner;
    }
    t = t.trim_start_matches('\'').trim_matches('"').trim();
    // Extensions: E.164 has none, so cut them ("ext. 12", "x12", ";ext=12", "#12").
    let lower = t.to_ascii_lowercase();
    let mut cut = t.len();
    for marker in [
        ";ext=",
        " ext",
        "ext.",
        "ext ",
        "extension",
        " x",
        "#",
        ",,",
    ] {
        if let Some(pos) = lower.find(marker) {
            // Only a marker after some digits counts (`x` alone could start a word).
            if t[..pos].bytes().filter(u8::is_ascii_digit).count() >= 7 {
                cut = cut.min(pos);
            }
        }
    }
    if let Some(pos) = lower.find('x') {
        let before = &t[..pos];
        let after = &t[pos + 1..];
        if before.bytes().filter(u8::is_ascii_digit).count() >= 7
            && before.ends_with(|c: char| c.is_ascii_digit())
            && !after.is_empty()
            && after
                .trim_start_matches('.')
                .trim()
                .bytes()
                .all(|b| b.is_ascii_digit())
        {
            cut = cut.min(pos);
        }
    }
    t = t[..cut].trim_end_matches([' ', ',', ';', '.', '-']).trim();
    // Numbers stored as floats: 2025550198.0, 2.025550198E+09.
    if let Some(int) = strip_float_zero(t) {
        t = int;
    } else if let Some(expanded) = expand_scientific(t)? {
        return Ok(Cleaned {
            text: expanded,
            changed: true,
        });
    }
    Ok(Cleaned {
        changed: t != original,
        text: t.to_string(),
    })
}

/// Starts of the Unicode blocks of decimal digits that occur in phone data (Arabic-Indic, Devanagari, Bengali, Thai,
/// full-width, …): libphonenumber reads them as digits, so must we.
pub(super) const DIGIT_BLOCKS: [u32; 19] = [
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x17E0, 0x1810, 0xFF10,
];

/// Fold Unicode digits to ASCII, Unicode dashes to `-`, Unicode spaces to ` `, and the full-width plus to `+`.
pub(super) fn fold_unicode(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() {
        return s.into();
    }
    s.chars()
        .map(|c| {
            let u = c as u32;
            if let Some(base) = DIGIT_BLOCKS.iter().find(|&&b| (b..b + 10).contains(&u)) {
                return char::from(b'0' + (u - base) as u8);
            }
            match c {
                '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}' | '\u{FF0D}' => '-',
                '\u{FF0B}' => '+',
                '\u{FF08}' => '(',
                '\u{FF09}' => ')',
                c if c.is_whitespace() => ' ',
                c => c,
            }
        })
        .collect::<String>()
        .into()
}

/// Keypad letters to digits, for vanity numbers (`1-800-FLOWERS`).
pub(super) fn vanity_to_digits(t: &str) -> Option<String> {
    // Like libphonenumber: the number starts at the first digit or plus, and needs three digits before any letter.
    let t = &t[t.find(|c: char| c.is_ascii_digit() || c == '+')?..];
    let head = &t[..t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len())];
    if head.bytes().filter(u8::is_ascii_digit).count() < 3
        || t.chars().filter(|c| c.is_ascii_alphabetic()).count() < 3
    {
        return None;
    }
    Some(
        t.chars()
            .map(|c| match c.to_ascii_uppercase() {
                'A'..='C' => '2',
                'D'..='F' => '3',
                'G'..='I' => '4',
                'J'..='L' => '5',
                'M'..='O' => '6',
                'P'..='S' => '7',
                'T'..='V' => '8',
                'W'..='Z' => '9',
                c => c,
            })
            .collect(),
    )
}

pub(super) fn strip_float_zero(t: &str) -> Option<&str> {
    let (int, frac) = t.split_once('.')?;
    (int.len() >= 7
        && int.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac.bytes().all(|b| b == b'0'))
    .then_some(int)
}

/// `2.025550198E+09` → `2025550198`; `2.02555E+09` → `PrecisionLost`; anything else → `None`.
pub(super) fn expand_scientific(t: &str) -> Result<Option<String>, RejectReason> {
    let Some((mantissa, exp)) = t.split_once(['e', 'E']) else {
        return Ok(None);
    };
    let exp = exp.strip_prefix('+').unwrap_or(exp);
    let Ok(exp) = exp.parse::<usize>() else {
        return Ok(None);
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Ok(None);
    }
    let frac = frac.trim_end_matches('0');
    if !(6..=16).contains(&exp) {
        return Ok(None);
    }
    if frac.len() > exp {
        return Ok(None); // not an integer at all
    }
    // Every digit of the number must be present in the mantissa, else digits were rounded away.
    let total = int.len() + exp;
    if int.len() + frac.len() < total && frac.len() < exp {
        // Trailing zeros could be genuine (2.0255502E+09 = 2025550200), but we cannot tell them from rounding.
        return Err(RejectReason::PrecisionLost);
    }
    let mut s = String::with_capacity(total);
    s.push_str(int);
    s.push_str(frac);
    while s.len() < total {
        s.push('0');
    }
    Ok(Some(s))
}

/// The phone-like head of a field that trails words: at least 7 digits, then a letter.
pub(super) fn strip_trailing_words(t: &str) -> Option<&str> {
    let pos = t.find(|c: char| c.is_alphabetic())?;
    let head = t[..pos].trim_end_matches(|c: char| !c.is_ascii_digit());
    (head.bytes().filter(u8::is_ascii_digit).count() >= 7).then_some(head)
}
