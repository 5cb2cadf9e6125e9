#!/usr/bin/env python3
"""Reads a daily metrics Parquet file with pyarrow and with DuckDB, independently of the Rust
codec.

    read_metrics.py FILE

Prints one JSON object {"pyarrow": [...], "duckdb": [...]}: one row per model version, sorted by
(model_name, model_version), with day (YYYY-MM-DD), the counts, decisions_by_label and
outcomes_by_label as objects, and confidence_mean.
"""

import json
import sys

import duckdb
import pyarrow.parquet as pq

COUNTS = ["decisions", "confidence_count", "reviews", "overrides", "outcomes"]


def with_pyarrow(path):
    rows = []
    for r in pq.read_table(path).to_pylist():
        row = {k: r[k] for k in ["tenant_id", "model_name", "model_version", *COUNTS]}
        row["day"] = r["day"].isoformat()
        # A Parquet map reads as a list of (key, value) pairs.
        row["decisions_by_label"] = dict(r["decisions_by_label"])
        row["outcomes_by_label"] = dict(r["outcomes_by_label"])
        row["confidence_mean"] = r["confidence_mean"]
        rows.append(row)
    return sorted(rows, key=lambda r: (r["model_name"], r["model_version"]))


def with_duckdb(path):
    con = duckdb.connect()
    result = con.execute(
        f"""
        SELECT tenant_id, model_name, model_version, {", ".join(COUNTS)},
               strftime(day, '%Y-%m-%d') AS day,
               map_keys(decisions_by_label) AS dk, map_values(decisions_by_label) AS dv,
               map_keys(outcomes_by_label) AS ok, map_values(outcomes_by_label) AS ov,
               confidence_mean
        FROM read_parquet(?)
        ORDER BY model_name, model_version
        """,
        [path],
    )
    names = [d[0] for d in result.description]
    rows = []
    for values in result.fetchall():
        r = dict(zip(names, values))
        r["decisions_by_label"] = dict(zip(r.pop("dk"), r.pop("dv")))
        r["outcomes_by_label"] = dict(zip(r.pop("ok"), r.pop("ov")))
        rows.append(r)
    return rows


def main():
    path = sys.argv[1]
    print(json.dumps({"pyarrow": with_pyarrow(path), "duckdb": with_duckdb(path)}))


if __name__ == "__main__":
    main()
