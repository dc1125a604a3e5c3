#!/usr/bin/env python3
"""Rebuild dncflow's number -> time zone table for the North American Numbering Plan from the `phonenumbers` PyPI
package (libphonenumber's time-zone metadata), and the corpus the differential test compares the Rust lookup with.

Writes
- `shared/data/nanp_timezones.csv`: `prefix,zones,source`, one row per libphonenumber key of country code 1 (the
  country code alone, area codes `1NPA`, and the 5- to 7-digit keys it has for area codes that span zones, down to
  the exchange `1NPANXX`). `zones` are IANA names joined by `|`. The lookup is by longest prefix, as in
  `phonenumbers.timezone.time_zones_for_geographical_number`. Rows whose `source` is `override:...` widen an area
  code that NANPA lists as spanning zones but that libphonenumber maps to one zone only (overlays added after the
  exchange-level data, and two area codes it maps to one side only); widening is the safe direction, since the
  calling window is the intersection over every candidate zone.
- `tests/fixtures/timezones_corpus.csv`: `e164,zones` as `time_zones_for_number` answers them (no overrides), for
  one valid number in every area code, one number under every exchange-level key, sampled exchanges of every area
  code and the non-geographic (toll-free) codes.

Usage: pip install phonenumbers==9.0.43 && python3 scripts/gen_timezones.py [--check]
`--check` regenerates both in memory and fails when the committed files differ (CI runs it).
"""
import argparse
import os
import random
import sys

import phonenumbers
from phonenumbers import timezone
from phonenumbers.tzdata import TIMEZONE_DATA

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "shared", "data", "nanp_timezones.csv")
CORPUS = os.path.join(ROOT, "tests", "fixtures", "timezones_corpus.csv")

# Overlays whose parent area code spans two zones but which libphonenumber maps only at area-code level, to one zone
# (REGULATORY.md section 4, verified against phonenumbers 9.0.43): the overlay covers the same ground as its parent,
# so it gets the union of the parent's zones.
OVERLAY_OF = {
    "364": "270",  # Kentucky, Eastern/Central
    "448": "850",  # Florida panhandle, Eastern/Central
    "458": "541",  # Oregon, Pacific/Mountain (Malheur County)
    "930": "812",  # Indiana, Eastern/Central
}
# Area codes NANPA lists as spanning two zones that libphonenumber maps to one zone with no exchange-level keys.
MULTI_ZONE = {
    "915": ("America/Chicago", "America/Denver"),  # West Texas: NANPA lists Central/Mountain
    "931": ("America/Chicago", "America/New_York"),  # Tennessee: NANPA lists Eastern/Central
}


def lookup(e164_digits):
    """libphonenumber's longest-prefix lookup over TIMEZONE_DATA (what `time_zones_for_geographical_number` does)."""
    for n in range(len(e164_digits), 0, -1):
        if e164_digits[:n] in TIMEZONE_DATA:
            return TIMEZONE_DATA[e164_digits[:n]]
    return None


def caribbean_area_codes():
    """Geographic area codes outside the US states and Canada: there libphonenumber tells mobile from fixed lines,
    and `time_zones_for_number` answers a mobile number with the country level zones (every NANP zone), not the
    area code's. In the US and Canada both are one type (FIXED_LINE_OR_MOBILE), placed by area code."""
    out = []
    with open(os.path.join(ROOT, "shared", "data", "npa.csv"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or line.startswith("npa,"):
                continue
            npa, country, region, kind = line.strip().split(",")[:4]
            if kind == "geographic" and country not in ("US", "CA") or region in ("US-VI", "US-PR", "US-GU", "US-AS", "US-MP"):
                out.append(npa)
    return sorted(set(out))


def non_geographic_rows():
    """`1NPANXX` (or `1NPANXXX` where an exchange mixes types) prefixes whose numbers libphonenumber does not place
    by area code, with the zones it answers. One number per 8-digit prefix is asked (suffix 0000 and 5555 must agree:
    numbering plans assign types by block of a thousand at the finest)."""
    rows = []
    for npa in caribbean_area_codes():
        for nxx in range(0, 1000):
            per_digit = []
            for x in range(10):
                prefix = f"1{npa}{nxx:03d}{x}"
                answers = set()
                for suffix in ("000", "555"):
                    n = phonenumbers.parse("+" + prefix + suffix)
                    if phonenumbers.is_valid_number(n):
                        answers.add(tuple(timezone.time_zones_for_number(n)))
                if len(answers) > 1:
                    raise SystemExit(f"{prefix}: numbers of one block get different zones: {answers}")
                per_digit.append(answers.pop() if answers else None)
            placed = tuple(lookup(f"1{npa}{nxx:03d}0") or ())
            odd = [a for a in per_digit if a is not None and a != placed]
            if not odd:
                continue
            if all(a == odd[0] or a is None for a in per_digit):
                rows.append((f"1{npa}{nxx:03d}", "|".join(odd[0]), "libphonenumber:non-geographic type"))
            else:
                for x, a in enumerate(per_digit):
                    if a is not None and a != placed:
                        rows.append((f"1{npa}{nxx:03d}{x}", "|".join(a), "libphonenumber:non-geographic type"))
    return rows


def table_rows():
    rows = []
    for key in sorted(k for k in TIMEZONE_DATA if k.startswith("1")):
        rows.append((key, "|".join(TIMEZONE_DATA[key]), "libphonenumber"))
    by_npa = {}
    for key, zones, _ in rows:
        if len(key) >= 4:
            by_npa.setdefault(key[1:4], set()).update(zones.split("|"))
    keys = {r[0]: i for i, r in enumerate(rows)}
    for overlay, parent in sorted(OVERLAY_OF.items()):
        zones = "|".join(sorted(by_npa[parent]))
        rows[keys["1" + overlay]] = ("1" + overlay, zones, f"override:overlay of {parent}")
    for npa, zones in sorted(MULTI_ZONE.items()):
        rows[keys["1" + npa]] = ("1" + npa, "|".join(zones), "override:NANPA multi-zone")
    return sorted(rows + non_geographic_rows())


def table_text():
    lines = [f"# generated by scripts/gen_timezones.py from phonenumbers {phonenumbers.__version__}; do not edit",
             "prefix,zones,source"]
    lines += [",".join(r) for r in table_rows()]
    return "\n".join(lines) + "\n"


def valid_number(prefix, rng):
    """A number starting with `prefix` (digits after '+') that libphonenumber holds valid, or None."""
    for _ in range(200):
        rest = "".join(rng.choice("0123456789") for _ in range(11 - len(prefix)))
        digits = prefix + rest
        if len(prefix) < 5:
            # Exchanges do not start with 0 or 1; most keys' numbers are valid only past them.
            digits = prefix + rng.choice("23456789") + rest[1:]
        n = phonenumbers.parse("+" + digits)
        if phonenumbers.is_valid_number(n):
            return "+" + digits
    return None


def corpus_text(seed=20261202, per_area_code=6):
    rng = random.Random(seed)
    area_codes = sorted({k[1:4] for k in TIMEZONE_DATA if k.startswith("1") and len(k) >= 4})
    prefixes = ["1" + a for a in area_codes for _ in range(per_area_code)]
    prefixes += sorted(k for k in TIMEZONE_DATA if k.startswith("1") and len(k) > 4)
    # Where libphonenumber tells mobile from fixed lines, more samples: the type decides the zones.
    prefixes += ["1" + a for a in caribbean_area_codes() for _ in range(40)]
    prefixes += ["1800", "1833", "1844", "1855", "1866", "1877", "1888"]
    seen = set()
    lines = [f"# generated by scripts/gen_timezones.py from phonenumbers {phonenumbers.__version__}; do not edit",
             "e164,zones"]
    for p in prefixes:
        number = valid_number(p, rng)
        if number is None or number in seen:
            continue
        seen.add(number)
        zones = timezone.time_zones_for_number(phonenumbers.parse(number))
        lines.append(f"{number},{'|'.join(zones)}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail when the committed files differ from a rebuild")
    args = ap.parse_args()
    outputs = [(TABLE, table_text()), (CORPUS, corpus_text())]
    if args.check:
        stale = []
        for path, text in outputs:
            try:
                with open(path, encoding="utf-8") as f:
                    current = f.read()
            except FileNotFoundError:
                current = None
            if current != text:
                stale.append(os.path.relpath(path, ROOT))
        if stale:
            print(f"out of date with phonenumbers {phonenumbers.__version__}: {', '.join(stale)}; "
                  "run scripts/gen_timezones.py", file=sys.stderr)
            sys.exit(1)
        print(f"time-zone table and corpus match phonenumbers {phonenumbers.__version__}")
        return
    for path, text in outputs:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"{os.path.relpath(path, ROOT)}: {text.count(chr(10)) - 2} rows")


if __name__ == "__main__":
    main()
