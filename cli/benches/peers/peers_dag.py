#!/usr/bin/env python3
"""The peers' benchmark DAG as a Cairn project, for `cli/benches/peers.rs`.

The models, the source data and the edited model are exactly those of the
generator dbt-duckdb, SQLMesh and Dagster were measured on (the team's
`shared/bench/gen_workload.py` and `cairn_emit.py`, seed 42): the parts
Cairn needs are kept here, unchanged in what they produce, so the
benchmark runs from a clone of this repository alone.

Usage: peers_dag.py --n 100 --rows 1000000 --out DIR [--seed 42] [--variants 5]
Writes DIR/cairn/{cairn.toml, data/raw_events.parquet, assets/*.sql},
DIR/variants/<changed>.<k>.sql (the edited model with its threshold raised
by 0.5 * k, k = 1..variants) and DIR/meta.json (the edited model and its
downstream). Needs numpy and pyarrow.
"""
import argparse
import json
import os
import random

SRC_SUB = ("(SELECT customer_id, event_date, category, amount, CAST(1 AS BIGINT) AS n "
           "FROM raw_events)")


def gen_source(path, rows, seed):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    day = rng.integers(0, 365, rows)
    cats = np.array([f"cat_{i:02d}" for i in range(20)])
    t = pa.table(
        {
            "event_id": pa.array(np.arange(rows, dtype=np.int64)),
            "customer_id": pa.array(rng.integers(0, 10_000, rows, dtype=np.int64)),
            "event_date": pa.array(np.datetime64("2024-01-01") + day.astype("timedelta64[D]")).cast(pa.date32()),
            "amount": pa.array(np.round(rng.gamma(2.0, 50.0, rows), 2)),
            "category": pa.array(cats[rng.integers(0, 20, rows)]),
        }
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(t, path, row_group_size=128 * 1024)


def gen_dag(n, seed):
    rng = random.Random(seed * 1_000_003 + n)
    n_layers = max(2, round(0.7 * n ** 0.5))
    models = []
    for i in range(n):
        layer = i * n_layers // n
        name = f"m_{i:04d}"
        if layer == 0:
            ups = ["SRC"]
        else:
            prev = [m["name"] for m in models if m["layer"] == layer - 1]
            earlier = [m["name"] for m in models if m["layer"] < layer]
            k = rng.choices([1, 2, 3], [0.45, 0.35, 0.20])[0]
            ups = [rng.choice(prev)]
            tries = 0
            while len(ups) < k and tries < 20:
                tries += 1
                cand = "SRC" if rng.random() < 0.10 else rng.choice(earlier)
                if cand not in ups:
                    ups.append(cand)
        op = rng.choice(["filter", "agg"]) if len(ups) == 1 else "join"
        m = {"name": name, "layer": layer, "ups": ups, "op": op,
             "thr": rng.choice([1, 2, 3, 5, 8, 10, 15, 20, 25, 30])}
        if op == "filter":
            m["mult"] = rng.choice([0.9, 0.95, 1.0, 1.05, 1.1])
            m["excl"] = f"cat_{rng.randrange(20):02d}"
        elif op == "agg":
            m["grain"] = rng.choice(["cust_month_cat", "cust_week", "cust_month", "bucket_date_cat"])
        else:
            m["keys"] = [rng.choice(["customer_id", "event_date"]) for _ in ups[1:]]
        models.append(m)
    return models


def descendants(models):
    children = {m["name"]: [] for m in models}
    for m in models:
        for u in m["ups"]:
            if u != "SRC":
                children[u].append(m["name"])
    out = {}
    for m in reversed(models):
        s = set()
        for c in children[m["name"]]:
            s.add(c)
            s |= out[c]
        out[m["name"]] = s
    return out


def pick_changed(models):
    """A 'leaf-ish' model: has downstream, but only a few descendants."""
    desc = descendants(models)
    cap = max(2, len(models) // 30)
    cands = [m["name"] for m in models if 1 <= len(desc[m["name"]]) <= cap]
    if not cands:
        cands = [m["name"] for m in models if desc[m["name"]]]
    best = max(cands, key=lambda x: (len(desc[x]), -int(x[2:])))
    return best, sorted(desc[best])


def model_sql(m, variant=0):
    def r(u):
        return SRC_SUB if u == "SRC" else u

    thr_s = f"{m['thr'] + 0.5 * variant:g}"
    u0 = r(m["ups"][0])
    if m["op"] == "filter":
        return (
            f"SELECT customer_id, event_date, category, amount * {m['mult']} AS amount, n\n"
            f"FROM {u0} AS t\n"
            f"WHERE amount > {thr_s} AND category <> '{m['excl']}'\n"
        )
    if m["op"] == "agg":
        sel = {
            "cust_month_cat": "customer_id, CAST(date_trunc('month', event_date) AS DATE) AS event_date, category",
            "cust_week": "customer_id, CAST(date_trunc('week', event_date) AS DATE) AS event_date, 'all' AS category",
            "cust_month": "customer_id, CAST(date_trunc('month', event_date) AS DATE) AS event_date, 'all' AS category",
            "bucket_date_cat": "customer_id % 500 AS customer_id, event_date, category",
        }[m["grain"]]
        return (
            f"SELECT {sel}, SUM(amount) AS amount, CAST(SUM(n) AS BIGINT) AS n\n"
            f"FROM {u0} AS t\n"
            f"WHERE amount > {thr_s}\n"
            f"GROUP BY 1, 2, 3\n"
        )
    lines = [
        "SELECT a.customer_id, a.event_date, a.category,\n"
        "       a.amount"
        + "".join(f" + COALESCE(j{i}.amt, 0) * 0.001" for i in range(1, len(m["ups"])))
        + " AS amount, a.n",
        f"FROM {u0} AS a",
    ]
    for i, (u, key) in enumerate(zip(m["ups"][1:], m["keys"]), start=1):
        lines.append(
            f"LEFT JOIN (SELECT {key}, SUM(amount) AS amt FROM {r(u)} AS s GROUP BY 1) AS j{i} "
            f"ON a.{key} = j{i}.{key}"
        )
    lines.append(f"WHERE a.amount > {thr_s}")
    return "\n".join(lines) + "\n"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def emit(n, rows, out, seed, variants):
    proj = os.path.join(out, "cairn")
    gen_source(os.path.join(proj, "data", "raw_events.parquet"), rows, seed)
    write(os.path.join(proj, "cairn.toml"), '[sources.raw_events]\npath = "data/raw_events.parquet"\n')
    models = gen_dag(n, seed)
    for m in models:
        write(os.path.join(proj, "assets", m["name"] + ".sql"), model_sql(m))
    changed, downstream = pick_changed(models)
    m = next(x for x in models if x["name"] == changed)
    for k in range(1, variants + 1):
        write(os.path.join(out, "variants", f"{changed}.{k}.sql"), model_sql(m, k))
    write(os.path.join(out, "meta.json"),
          json.dumps({"n": n, "rows": rows, "changed": changed, "downstream": downstream}, indent=1))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--variants", type=int, default=5)
    a = ap.parse_args()
    emit(a.n, a.rows, a.out, a.seed, a.variants)
