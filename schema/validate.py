#!/usr/bin/env python3
"""Checks decision records against decision-record.v1.schema.json.

Input: JSON Lines (one record per line) from the files named, or stdin. Output: one JSON line
per record, {"line": n, "valid": true|false, "errors": ["<path>: <why>", ...]}; the exit status
is 0 when every record is valid, 1 otherwise.

Before the schema, each line is read as strictly as ingest reads it, since JSON Schema only
sees the parsed value: no NaN/Infinity tokens, no duplicate keys, no lone UTF-16 surrogates,
no nesting deeper than ingest's parser allows. Rules that depend on the whole message or on
ingest's clock (body and record size, occurred_at in the future) are left to ingest; the
schema's $comment lists them.

Needs the `jsonschema` package (pinned in localstack/requirements.in).
"""

import argparse
import json
import re
import sys
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

SCHEMA = Path(__file__).with_name("decision-record.v1.schema.json")

# serde_json refuses the 128th nested array/object, the record object itself included.
MAX_DEPTH = 127

SURROGATE = re.compile("[\ud800-\udfff]")


class TextError(ValueError):
    pass


def _no_constants(name):
    raise TextError(f"{name} is not JSON")


def _unique_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise TextError(f"duplicate key {key!r}: keys must be unique")
        obj[key] = value
    return obj


def _check_text(value, depth=0):
    """Depth and surrogates, which the parser lets through."""
    if isinstance(value, (dict, list)):
        depth += 1
        if depth > MAX_DEPTH:
            raise TextError(f"nested deeper than {MAX_DEPTH} arrays/objects")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and SURROGATE.search(key):
                raise TextError(f"lone UTF-16 surrogate in key {key!r}")
            _check_text(item, depth)
    elif isinstance(value, str) and SURROGATE.search(value):
        raise TextError("lone UTF-16 surrogate in a string")


def parse(line):
    value = json.loads(
        line, parse_constant=_no_constants, object_pairs_hook=_unique_keys
    )
    _check_text(value)
    return value


def check(validator, line):
    """The errors of one record given as UTF-8 bytes (empty when it is valid)."""
    try:
        record = parse(line.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors, as is Python's limit on the
        # digits of an integer.
        return [f"$: not valid JSON text: {e}"]
    return sorted(explain(e) for e in validator.iter_errors(record))


def explain(error):
    """One line for one error, naming the innermost rule broken."""
    while error.context:
        # An optional field is "null or X": when it fails as X, "not null" is no news.
        tried = [
            e
            for e in error.context
            if not (e.validator == "type" and e.validator_value == "null")
        ]
        error = best_match(tried or error.context)
    if error.validator == "pattern":
        # The regular expressions are long; the schema's $comments explain them.
        return f"{error.json_path}: {error.instance!r} does not have the required form"
    return f"{error.json_path}: {error.message}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="JSON Lines files (default: stdin)")
    parser.add_argument("--schema", type=Path, default=SCHEMA)
    args = parser.parse_args()

    schema = json.loads(args.schema.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)

    # Bytes, split on newlines only: a JSON text may hold a bare carriage return as whitespace.
    sources = [open(f, "rb") for f in args.files] or [sys.stdin.buffer]
    all_valid = True
    n = 0
    for source in sources:
        with source:
            for line in source:
                n += 1
                if not line.strip():
                    continue
                errors = check(validator, line.rstrip(b"\n"))
                all_valid &= not errors
                print(json.dumps({"line": n, "valid": not errors, "errors": errors}))
    return 0 if all_valid else 1


if __name__ == "__main__":
    sys.exit(main())
