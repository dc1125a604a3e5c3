#!/usr/bin/env python3
"""Rebuild dncflow's phone metadata tables from the `phonenumbers` PyPI package.

Writes `shared/data/npa.csv` (every North American area code that libphonenumber treats as valid, with the
ISO 3166 country and, where a single one applies, the ISO 3166-2 subdivision) and `shared/data/country_codes.csv`
(every country calling code with its main region and the possible lengths of its national significant numbers).
The Rust normalizer embeds both files at compile time.

Usage: pip install phonenumbers==9.0.43 && python3 scripts/gen_metadata.py [--check REGIONS.csv]

New area codes are added several times a year: bump the pinned version, rerun, and commit the diff.
"""
import argparse
import csv
import os
import sys

import phonenumbers
from phonenumbers import PhoneNumberType, geocoder
from phonenumbers.geodata import GEOCODE_DATA
from phonenumbers.phonemetadata import PhoneMetadata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "shared", "data")

US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID",
    "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX",
    "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA", "Washington State": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY", "Washington D.C.": "DC",
    "District of Columbia": "DC",
}
CA_PROVINCES = {
    "Alberta": "AB", "British Columbia": "BC", "British Colombia": "BC", "Manitoba": "MB", "New Brunswick": "NB",
    "Newfoundland and Labrador": "NL", "Newfoundland": "NL", "Nova Scotia": "NS", "Ontario": "ON",
    "Prince Edward Island": "PE", "Quebec": "QC", "Québec": "QC", "Saskatchewan": "SK",
    "Northwest Territories": "NT", "Nunavut": "NU", "Yukon": "YT",
}
# Territories that have their own ISO 3166-1 code but are also US subdivisions in ISO 3166-2:US.
US_TERRITORIES = {"PR": "US-PR", "VI": "US-VI", "GU": "US-GU", "AS": "US-AS", "MP": "US-MP"}
NON_GEOGRAPHIC = {
    PhoneNumberType.TOLL_FREE: "TOLL_FREE",
    PhoneNumberType.PREMIUM_RATE: "PREMIUM_RATE",
    PhoneNumberType.PERSONAL_NUMBER: "PERSONAL_NUMBER",
    PhoneNumberType.VOIP: "VOIP",
    PhoneNumberType.UAN: "UAN",
    PhoneNumberType.SHARED_COST: "SHARED_COST",
}


def subdivisions_of(desc, country):
    """Map a geocoder description ("New Jersey", "San Antonio, TX", "Nova Scotia/Prince Edward Island") to the set
    of ISO 3166-2 codes it names."""
    if not desc:
        return set()
    return {s for s in (subdivision(part.strip(), country) for part in desc.split("/")) if s}


def subdivision(desc, country):
    """Map one geocoder description ("New Jersey", "San Antonio, TX", "Ontario") to an ISO 3166-2 code."""
    if not desc:
        return None
    if country == "US":
        if desc in US_STATES:
            return "US-" + US_STATES[desc]
        tail = desc.rsplit(",", 1)[-1].strip()
        if len(tail) == 2 and tail.isupper() and tail in US_STATES.values():
            return "US-" + tail
    if country == "CA":
        if desc in CA_PROVINCES:
            return "CA-" + CA_PROVINCES[desc]
        tail = desc.rsplit(",", 1)[-1].strip()
        if len(tail) == 2 and tail.isupper() and tail in CA_PROVINCES.values():
            return "CA-" + tail
    return None


def npa_rows():
    rows = []
    for npa in range(200, 1000):
        countries, subdivisions, kinds = set(), set(), set()
        valid = 0
        for nxx in range(200, 1000):
            for line in ("4567", "0100"):
                num = phonenumbers.PhoneNumber(country_code=1, national_number=int(f"{npa}{nxx}{line}"))
                if not phonenumbers.is_valid_number(num):
                    continue
                valid += 1
                region = phonenumbers.region_code_for_number(num)
                ntype = phonenumbers.number_type(num)
                if ntype in NON_GEOGRAPHIC:
                    kinds.add(NON_GEOGRAPHIC[ntype])
                    # Toll-free and personal numbers are valid in several NANP countries at once.
                    nanp = [r for r in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]
                            if phonenumbers.is_valid_number_for_region(num, r)]
                    countries.add(region if len(nanp) <= 1 else "NANP")
                    continue
                kinds.add("GEOGRAPHIC")
                countries.add(region)
                if region in US_TERRITORIES:
                    subdivisions.add(US_TERRITORIES[region])
                else:
                    subdivisions.update(subdivisions_of(geocoder.description_for_number(num, "en"), region))
                break
        if not valid:
            continue
        # Most area codes have exchanges 2XX-9XX only; a few (the Dominican Republic's) also use 0XX and 1XX.
        low_exchange = any(
            phonenumbers.is_valid_number(phonenumbers.PhoneNumber(country_code=1, national_number=int(f"{npa}{nxx:03d}{line}")))
            for nxx in range(0, 200) for line in ("4567", "0100"))
        country = sorted(countries)[0] if len(countries) == 1 else "NANP"
        # The area code's own geocoder entry wins over the longer prefixes below it (a few exchanges of 201 geocode
        # to New York, but 201 is New Jersey's).
        npa_desc = GEOCODE_DATA.get(f"1{npa}", {}).get("en")
        if npa_desc and subdivisions_of(npa_desc, country):
            subdivisions = subdivisions_of(npa_desc, country)
        if "GEOGRAPHIC" in kinds:
            kind = "geographic"
            if country in US_TERRITORIES or country in ("US", "CA"):
                region = "|".join(sorted(subdivisions)) if subdivisions else ""
            else:
                region = country
        else:
            kind = "non-geographic"
            region = ""
        number_type = "" if kind == "geographic" else "|".join(sorted(kinds))
        rows.append({"npa": npa, "country": country, "region": region, "kind": kind, "number_type": number_type,
                     "low_exchange": int(low_exchange)})
    return rows


def country_rows():
    rows = []
    for cc in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[cc]
        lengths = set()
        prefixes = set()
        for region in regions:
            meta = (PhoneMetadata.metadata_for_nongeo_region(cc) if region == "001"
                    else PhoneMetadata.metadata_for_region(region))
            if meta is None:
                continue
            if meta.general_desc and meta.general_desc.possible_length:
                lengths.update(l for l in meta.general_desc.possible_length if l > 0)
            if meta.national_prefix:
                prefixes.add(meta.national_prefix)
        rows.append({"cc": cc, "main_region": regions[0], "regions": "|".join(regions),
                     "lengths": "|".join(str(l) for l in sorted(lengths)),
                     "national_prefix": "|".join(sorted(prefixes))})
    return rows


def write(path, rows, fields, header_comment):
    with open(path, "w", newline="") as f:
        f.write(header_comment)
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def check(rows, reference):
    """Compare with the hand-out reference table; print every difference, return how many."""
    ours = {r["npa"]: r for r in rows}
    diffs = 0
    with open(reference) as f:
        for ref in csv.DictReader(f):
            npa = int(ref["npa"])
            mine = ours.pop(npa, None)
            if mine is None:
                print(f"missing NPA {npa}: reference {ref}")
                diffs += 1
                continue
            if mine["country"] != ref["country_iso"] or mine["region"] != ref["region_code"] \
                    or mine["kind"] != ref["kind"]:
                print(f"NPA {npa}: ours {mine} reference {ref['country_iso']},{ref['region_code']},{ref['kind']}")
                diffs += 1
    for npa in ours:
        print(f"extra NPA {npa}: {ours[npa]}")
        diffs += 1
    return diffs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", help="a reference table of area codes and their regions (CSV npa,region) to compare against")
    args = ap.parse_args()
    stamp = f"# generated by scripts/gen_metadata.py from phonenumbers {phonenumbers.__version__}; do not edit\n"
    npas = npa_rows()
    write(os.path.join(OUT_DIR, "npa.csv"), npas, ["npa", "country", "region", "kind", "number_type", "low_exchange"], stamp)
    ccs = country_rows()
    write(os.path.join(OUT_DIR, "country_codes.csv"), ccs,
          ["cc", "main_region", "regions", "lengths", "national_prefix"], stamp)
    print(f"{len(npas)} area codes, {len(ccs)} country calling codes (phonenumbers {phonenumbers.__version__})")
    if args.check:
        diffs = check(npas, args.check)
        print(f"{diffs} differences against {args.check}")
        sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
