#!/usr/bin/env python3
"""Generate the differential-test corpus: messy phone inputs with libphonenumber's verdict on each.

Every line of `tests/fixtures/differential.jsonl.gz` is {"in": raw input, "cat": category, "e164": E.164 or null,
"region": libphonenumber's region or null}, from `phonenumbers.parse(raw, "US")` and `is_valid_number`. The test in
`tests/inputs/differential.rs` runs dncflow's normalizer over the same inputs and requires that every number libphonenumber
accepts is accepted with the same E.164.

Usage: pip install phonenumbers==9.0.43 && python3 scripts/gen_corpus.py [--count 120000] [--seed 20261123]
"""
import argparse
import gzip
import json
import os
import random

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "differential.jsonl.gz")

KNOWN_NPAS = [int(l.split(",")[0]) for l in open(os.path.join(ROOT, "shared", "data", "npa.csv"))
              if l[0].isdigit()]
TYPES = [PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE, PhoneNumberType.VOIP,
         PhoneNumberType.PREMIUM_RATE, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.UAN]


def nanp_digits(rng, known):
    npa = rng.choice(KNOWN_NPAS) if known else rng.randint(0, 999)
    nxx = rng.randint(200, 999) if known and rng.random() < 0.9 else rng.randint(0, 999)
    return f"{npa:03d}", f"{nxx:03d}", f"{rng.randint(0, 9999):04d}"


def nanp_format(rng, npa, nxx, line):
    return rng.choice([
        f"{npa}{nxx}{line}", f"{npa}-{nxx}-{line}", f"({npa}) {nxx}-{line}", f"({npa}){nxx}-{line}",
        f"{npa}.{nxx}.{line}", f"{npa} {nxx} {line}", f"1{npa}{nxx}{line}", f"1-{npa}-{nxx}-{line}",
        f"+1{npa}{nxx}{line}", f"+1 ({npa}) {nxx}-{line}", f"+1.{npa}.{nxx}.{line}", f"1 ({npa}) {nxx} {line}",
        f"  {npa}-{nxx}-{line}  ", f"{npa}/{nxx}-{line}", f"+1-{npa}-{nxx}-{line}",
    ])


def gen(rng, cat):
    if cat == "nanp_known":
        return nanp_format(rng, *nanp_digits(rng, True))
    if cat == "nanp_random":
        return nanp_format(rng, *nanp_digits(rng, False))
    if cat == "extension":
        base = nanp_format(rng, *nanp_digits(rng, True))
        return base + rng.choice([" ext 123", " ext. 45", " x123", " X 9", "#77", ";ext=12", " extension 5",
                                  " Ext: 1234", "x0"])
    if cat == "spreadsheet":
        npa, nxx, line = nanp_digits(rng, True)
        d = f"{npa}{nxx}{line}"
        return rng.choice([f"{d}.0", f'="{d}"', f"'{d}", f"{d[0]}.{d[1:]}E+09", f"{d[0]}.{d[1:6]}E+09",
                           f"1{d}.0", f'"{d}"', f"{d[0]}.{d[1:]}e9"])
    if cat == "trailing_words":
        base = nanp_format(rng, *nanp_digits(rng, True))
        return base + rng.choice([" mobile", " (home)", " cell", " - work", " call after 5", " DNC", " wk"])
    if cat == "vanity":
        npa = rng.choice(["800", "888", "877", "202", "415"])
        word = "".join(rng.choice("ABCDEFGHIJKLMNOPRSTUVWXY") for _ in range(7))
        return rng.choice([f"1-{npa}-{word}", f"{npa}-{word[:3]}-{word[3:]}", f"+1 {npa} {word}"])
    if cat == "unicode":
        d = "".join(nanp_digits(rng, True))
        variant = rng.randint(0, 3)
        if variant == 0:  # full-width digits
            return "".join(chr(0xFF10 + int(c)) for c in d)
        if variant == 1:  # Arabic-Indic digits
            return "".join(chr(0x0660 + int(c)) for c in d)
        if variant == 2:  # en dashes and non-breaking spaces
            return f"{d[:3]}\u2013{d[3:6]}\u2013{d[6:]}"
        return f"({d[:3]})\u00a0{d[3:6]}\u00a0{d[6:]}"
    if cat in ("intl", "intl_mutated"):
        region = rng.choice(sorted(phonenumbers.SUPPORTED_REGIONS))
        ex = phonenumbers.example_number_for_type(region, rng.choice(TYPES))
        if ex is None:
            ex = phonenumbers.example_number(region)
        if ex is None:
            return "+44 20 7946 0018"
        if cat == "intl_mutated":
            nsn = str(ex.national_number)
            digits = list(nsn)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(digits))
                digits[i] = str(rng.randint(0, 9))
            if rng.random() < 0.2:
                digits.append(str(rng.randint(0, 9)))
            if rng.random() < 0.2 and len(digits) > 4:
                digits.pop()
            nsn = "".join(digits)
            lead = "0" * (ex.number_of_leading_zeros or 0) if ex.italian_leading_zero else ""
            return rng.choice([f"+{ex.country_code}{lead}{nsn}", f"+{ex.country_code} {lead}{nsn}",
                               f"011{ex.country_code}{lead}{nsn}"])
        fmt = rng.choice([PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL])
        s = phonenumbers.format_number(ex, fmt)
        roll = rng.random()
        if roll < 0.15:
            s = "011 " + s[1:]
        elif roll < 0.25:
            s = "00" + s[1:]
        return s
    if cat == "junk":
        kind = rng.randint(0, 7)
        if kind == 0:
            return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
        if kind == 1:
            return "".join(rng.choice("0123456789") for _ in range(rng.randint(12, 20)))
        if kind == 2:
            return rng.choice(["", " ", "N/A", "none", "unknown", "-", "null", "TBD", "#N/A", "0", "+", "()"])
        if kind == 3:
            return "".join(rng.choice("abcdefghij-.() +#*") for _ in range(rng.randint(1, 15)))
        if kind == 4:
            return "+" + "".join(rng.choice("0123456789") for _ in range(rng.randint(2, 16)))
        if kind == 5:
            return "".join(rng.choice("0123456789-. ") for _ in range(rng.randint(5, 18)))
        if kind == 6:
            return "555-" + f"{rng.randint(0, 9999):04d}"
        return "".join(rng.choice("0123456789") for _ in range(11))
    raise ValueError(cat)


WEIGHTS = {"nanp_known": 30, "nanp_random": 20, "extension": 6, "spreadsheet": 6, "trailing_words": 5,
           "vanity": 3, "unicode": 4, "intl": 12, "intl_mutated": 6, "junk": 8}


def verdict(raw):
    try:
        n = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return None, None
    if not phonenumbers.is_valid_number(n):
        return None, None
    return phonenumbers.format_number(n, PhoneNumberFormat.E164), phonenumbers.region_code_for_number(n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=120000)
    ap.add_argument("--seed", type=int, default=20261123)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    cats = list(WEIGHTS)
    weights = [WEIGHTS[c] for c in cats]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    valid = 0
    with gzip.open(OUT, "wt", encoding="utf-8") as f:
        for _ in range(args.count):
            cat = rng.choices(cats, weights)[0]
            raw = gen(rng, cat)
            e164, region = verdict(raw)
            valid += e164 is not None
            f.write(json.dumps({"in": raw, "cat": cat, "e164": e164, "region": region}, ensure_ascii=False) + "\n")
    print(f"{args.count} inputs, {valid} valid per libphonenumber (phonenumbers {phonenumbers.__version__}) -> {OUT}")


if __name__ == "__main__":
    main()
