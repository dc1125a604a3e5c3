#!/usr/bin/env python3
"""Rebuild dncflow's number -> time zone table for the North American Numbering Plan from the `phonenumbers` PyPI
package (libphonenumber's time-zone metadata), and the corpus the differential test compares the Rust lookup with.

Writes
- `shared/data/nanp_timezones.csv`: `prefix,zones,source`, one row per libphonenumber key of country code 1 (the
  country code alone, area codes `1NPA`, and the 5- to 7-digit keys it has for area codes that span zones, down to
  the exchange `1NPANXX`). `zones` are IANA names joined by `|`. The lookup is by longest prefix, as in
  `phonenumbers.timezone.time_zones_for_geographical_number`. Three kinds of rows differ from libphonenumber, each
  saying so in `source`:
  - `correction:...`: a key libphonenumber places in the wrong zone, from `CORRECTIONS` below (each with its
    source), applied first so the other rules see the corrected zones;
  - `override:split area code ...`: in an area code whose keys name more than one zone, a key that serves as the
    default for exchanges listed under it with other zones (the area code's own row, and in 208 some blocks of
    exchanges) names every zone of the area code. An exchange libphonenumber does not list may be anywhere in the
    area code, and the calling window is the intersection over the candidate zones, so the union is the safe
    answer; a key that lists exchanges explicitly (six or seven digits with nothing finer under it) still narrows;
  - `override:overlay of ...` / `override:NANPA multi-zone`: area codes NANPA lists as spanning zones that
    libphonenumber maps to one zone only (overlays added after the exchange-level data, two area codes it maps to
    one side only).
  Every override only widens libphonenumber's answer (tests/inputs/differential.rs holds that).
- `tests/fixtures/timezones_corpus.csv`: `e164,zones` as `time_zones_for_number` answers them (no overrides), for
  one valid number in every area code, one number under every exchange-level key, sampled exchanges of every area
  code and the non-geographic (toll-free) codes.

Usage: pip install phonenumbers==9.0.43 && python3 scripts/gen_timezones.py [--check | --report]
`--check` regenerates both in memory and fails when the committed files differ (CI runs it). `--report` prints, per
split area code, how many exchanges the overrides change and what that costs in callable hours (the table in
docs/calling-hours.md).
Sources of the rules: docs/calling-hours.md ("Where the called party is").
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

# Keys libphonenumber places in the wrong zone: key -> (zones, source). Each entry has a test in
# shared/src/hours/zones.rs (`corrections_hold`).
CORRECTIONS = {
    # Unalaska (Aleutians West, 166°32' W) keeps Alaska time: the Hawaii-Aleutian zone is Alaska west of 169°30' W
    # (49 CFR 71.10-71.11); libphonenumber 9.0.43 maps the exchange to Pacific/Honolulu.
    "1907581": (("America/Anchorage",), "Unalaska keeps Alaska time (49 CFR 71.10-71.11)"),
}
# Overlays whose parent area code spans two zones but which libphonenumber maps only at area-code level, to one zone
# (docs/calling-hours.md, verified against phonenumbers 9.0.43): the overlay covers the same ground as its parent,
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
    rows = {}
    for key in sorted(k for k in TIMEZONE_DATA if k.startswith("1")):
        rows[key] = ("|".join(TIMEZONE_DATA[key]), "libphonenumber")
    for key, (zones, why) in sorted(CORRECTIONS.items()):
        if key not in rows and not any(key.startswith(k) for k in rows if len(k) >= 4):
            raise SystemExit(f"correction {key}: libphonenumber has no key for it any more; review CORRECTIONS")
        rows[key] = ("|".join(zones), f"correction:{why}")
    for key, zones in split_area_code_rows(rows).items():
        rows[key] = zones
    by_npa = zones_by_area_code(rows)
    for overlay, parent in sorted(OVERLAY_OF.items()):
        zones = "|".join(sorted(by_npa[parent]))
        rows["1" + overlay] = (zones, f"override:overlay of {parent}")
    for npa, zones in sorted(MULTI_ZONE.items()):
        rows["1" + npa] = ("|".join(zones), "override:NANPA multi-zone")
    return sorted([(k, z, src) for k, (z, src) in rows.items()] + non_geographic_rows())


def zones_by_area_code(rows):
    """Area code -> every zone its keys name."""
    by_npa = {}
    for key, (zones, _) in rows.items():
        if len(key) >= 4:
            by_npa.setdefault(key[1:4], set()).update(zones.split("|"))
    return by_npa


def split_area_code_rows(rows):
    """In an area code whose keys name more than one zone, each key that has a finer key under it naming other zones
    is a default for the exchanges libphonenumber does not list: it gets every zone of the area code."""
    out = {}
    by_npa = zones_by_area_code(rows)
    for key, (zones, _) in rows.items():
        if len(key) < 4 or len(key) >= 7:
            continue
        npa = key[1:4]
        every = by_npa[npa]
        if len(every) < 2:
            continue
        own = set(zones.split("|"))
        finer = [k for k in rows if len(k) > len(key) and k.startswith(key) and set(rows[k][0].split("|")) != own]
        if finer and own != every:
            out[key] = ("|".join(sorted(every)), f"override:split area code {npa} (every zone of it)")
    return out


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


def window_hours(zones, day):
    """Hours of `day` (a date) inside 08:00-21:00 local time in every one of `zones` (the federal window)."""
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    start = max(datetime.combine(day, time(8), ZoneInfo(z)) for z in zones)
    end = min(datetime.combine(day, time(21), ZoneInfo(z)) for z in zones)
    return max(0.0, (end - start).total_seconds() / 3600)


def report_text():
    """Per area code the table changes: exchanges (NXX 200-999) whose zones differ from libphonenumber's, and the
    federal window's hours a day for them before and after, on a winter and a summer Wednesday."""
    from datetime import date

    # The table as a lookup by prefix; rows for mobile blocks outside the US and Canada are left out (libphonenumber
    # answers those by number type, which `lookup` does not model either).
    table = {k: z.split("|") for k, z, src in table_rows() if "non-geographic" not in src}

    def ours(digits):
        for n in range(min(len(digits), 8), 0, -1):
            if digits[:n] in table:
                return tuple(table[digits[:n]])
        return ()

    days = (date(2026, 12, 9), date(2026, 7, 8))
    lines = ["| Area code | Exchanges changed (of 800) | From → to | Federal window, hours a day (winter / summer) |",
             "|---|---|---|---|"]
    total = 0
    for npa in sorted({k[1:4] for k in table if len(k) >= 4}):
        changes = {}
        for nxx in range(200, 1000):
            digits = f"1{npa}{nxx}0100"
            before, after = tuple(lookup(digits) or ()), ours(digits)
            if before != after and before:
                changes.setdefault((before, after), 0)
                changes[(before, after)] += 1
        for (before, after), n in sorted(changes.items()):
            total += n
            cost = " / ".join(f"{window_hours(before, d):g} → {window_hours(after, d):g}" for d in days)
            short = lambda zones: ", ".join(z.split("/")[-1].replace("_", " ") for z in zones)
            lines.append(f"| {npa} | {n} | {short(before)} → {short(after)} | {cost} |")
    lines.append(f"| all | {total} | | |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail when the committed files differ from a rebuild")
    ap.add_argument(
        "--report", action="store_true", help="print what the overrides change (the table in docs/calling-hours.md)"
    )
    args = ap.parse_args()
    if args.report:
        print(report_text(), end="")
        return
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
