#!/usr/bin/env python3
"""Reads journal Parquet files with pyarrow and with DuckDB, independently of the Rust codec.

    read_parquet.py DIR

Prints one JSON object {"pyarrow": [...], "duckdb": [...], "schema": {...}} where each list holds
one row per record, sorted by record_id, with the columns the Rust test compares: record_id,
kind, decision, occurred_at (epoch ms), subject_ref, confidence, the first output's label and
score, and leaf_hash as hex.
"""

import json
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq


def with_pyarrow(files):
    rows = []
    for f in files:
        table = pq.read_table(f)
        for r in table.to_pylist():
            outputs = r["outputs"] or []
            rows.append({
                "record_id": r["record_id"],
                "kind": r["kind"],
                "decision": r["decision"],
                "occurred_at": int(r["occurred_at"].timestamp() * 1000 + 0.5),
                "subject_ref": r["subject_ref"],
                "confidence": r["confidence"],
                "first_label": outputs[0]["label"] if outputs else None,
                "first_score": outputs[0]["score"] if outputs else None,
                "leaf_hash": r["leaf_hash"].hex(),
            })
    return sorted(rows, key=lambda r: r["record_id"])


def with_duckdb(directory):
    con = duckdb.connect()
    result = con.execute(
        """
        SELECT record_id, kind, decision, epoch_ms(occurred_at) AS occurred_at, subject_ref,
               confidence, outputs[1].label AS first_label, outputs[1].score AS first_score,
               lower(hex(leaf_hash)) AS leaf_hash
        FROM read_parquet(?)
        ORDER BY record_id
        """,
        [str(Path(directory) / "*.parquet")],
    )
    names = [d[0] for d in result.description]
    return [dict(zip(names, row)) for row in result.fetchall()]


def main():
    directory = sys.argv[1]
    files = sorted(Path(directory).glob("*.parquet"))
    schema = pq.read_schema(files[0]) if files else None
    print(json.dumps({
        "pyarrow": with_pyarrow(files),
        "duckdb": with_duckdb(directory),
        "schema": {f.name: str(f.type) for f in schema} if schema else {},
    }))


if __name__ == "__main__":
    main()
