"""The DuckDB side of `tessera bench segments`.

Loads the CSV files the benchmark wrote (profiles.csv and events.csv) into tables of an
in-memory DuckDB database, then asks it the benchmark's audience questions as SQL and prints one
JSON line with the sizes and the median seconds of each, so the Rust side can check that both
engines agree and print the ratio.

Usage: python segments_duckdb.py SPEC.json

SPEC.json (written by the Rust side):
  {"profiles_csv": "...", "events_csv": "...", "threads": 2, "runs": 5, "now": <ms>,
   "questions": [{"name": "Q1", "audiences": [AUDIENCE, ...]}, ...]}
with AUDIENCE = {"trait_sql": "country = 'DE' AND lifetime_value > 100"} for a trait-only
audience, plus "event", "category", "at_least" and "days" for
`<trait filter> and performed "<event>" where category = "<category>"
 at least <at_least> times within <days> days`.

The event window is (now - days, now], exactly as Tessera's: `ts > now - days AND ts <= now`.
A question with several audiences is answered two ways: one query per audience, one after
another (as Tessera does), and all of them in one query over one scan of the events; the
faster of the two is DuckDB's figure and both must give the same sizes.
"""

import json
import statistics
import sys
import time

import duckdb

DAY_MS = 86_400_000


def log(msg):
    print(f"[duckdb] {msg}", file=sys.stderr, flush=True)


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def proc_status_bytes(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def window_sql(now, days):
    return f"ts > {now - days * DAY_MS} AND ts <= {now}"


def audience_sql(a, now):
    """One audience's size as one query."""
    if "event" not in a:
        return f"SELECT count(*) FROM profiles WHERE {a['trait_sql']}"
    return (
        f"SELECT count(*) FROM profiles WHERE ({a['trait_sql']}) AND slot IN ("
        f"SELECT slot FROM events WHERE name = {sql_str(a['event'])}"
        f" AND category = {sql_str(a['category'])} AND {window_sql(now, a['days'])}"
        f" GROUP BY slot HAVING count(*) >= {int(a['at_least'])})"
    )


def combined_sql(audiences, now):
    """Every audience's size in one query: one scan of the events, one join."""
    if any("event" not in a for a in audiences):
        return None
    counts, names, sums = [], set(), []
    oldest = max(a["days"] for a in audiences)
    for i, a in enumerate(audiences):
        names.add(a["event"])
        counts.append(
            f"count(*) FILTER (WHERE name = {sql_str(a['event'])}"
            f" AND category = {sql_str(a['category'])} AND {window_sql(now, a['days'])}) AS c{i}"
        )
        sums.append(
            f"count(*) FILTER (WHERE ({a['trait_sql']}) AND coalesce(c.c{i}, 0) >= {int(a['at_least'])})"
        )
    name_list = ", ".join(sql_str(n) for n in sorted(names))
    return (
        f"WITH c AS (SELECT slot, {', '.join(counts)} FROM events"
        f" WHERE name IN ({name_list}) AND {window_sql(now, oldest)} GROUP BY slot)"
        f" SELECT {', '.join(sums)} FROM profiles p LEFT JOIN c ON p.slot = c.slot"
    )


def timed(con, queries, runs):
    """Runs the queries one after another `runs` times: (sizes, median seconds, all seconds)."""
    seconds, sizes = [], None
    for _ in range(runs):
        t = time.perf_counter()
        got = []
        for q in queries:
            got.extend(int(x) for x in con.execute(q).fetchone())
        seconds.append(time.perf_counter() - t)
        if sizes is not None and got != sizes:
            raise SystemExit(f"DuckDB gave different sizes on two runs: {sizes} then {got}")
        sizes = got
    return sizes, statistics.median(seconds), seconds


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    now, runs, threads = int(spec["now"]), int(spec["runs"]), int(spec["threads"])
    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {threads}")
    out = {"duckdb_version": duckdb.__version__, "threads": threads}

    t = time.perf_counter()
    con.execute(
        "CREATE TABLE profiles AS SELECT * FROM read_csv("
        f"{sql_str(spec['profiles_csv'])}, header = true, auto_detect = false, "
        "columns = {'slot': 'INTEGER', 'country': 'VARCHAR', 'plan': 'VARCHAR', "
        "'lifetime_value': 'DOUBLE', 'email_domain': 'VARCHAR'})"
    )
    out["load_profiles_seconds"] = time.perf_counter() - t
    t = time.perf_counter()
    con.execute(
        "CREATE TABLE events AS SELECT * FROM read_csv("
        f"{sql_str(spec['events_csv'])}, header = true, auto_detect = false, "
        "columns = {'slot': 'INTEGER', 'name': 'VARCHAR', 'category': 'VARCHAR', "
        "'ts': 'BIGINT', 'price': 'DOUBLE'})"
    )
    out["load_events_seconds"] = time.perf_counter() - t
    out["profiles"] = con.execute("SELECT count(*) FROM profiles").fetchone()[0]
    out["events"] = con.execute("SELECT count(*) FROM events").fetchone()[0]
    out["rss_after_load_bytes"] = proc_status_bytes("VmRSS:")
    log(
        f"loaded {out['profiles']} profiles in {out['load_profiles_seconds']:.1f} s and "
        f"{out['events']} events in {out['load_events_seconds']:.1f} s"
    )

    answers = []
    for question in spec["questions"]:
        audiences = question["audiences"]
        sizes, median, all_runs = timed(con, [audience_sql(a, now) for a in audiences], runs)
        answer = {
            "name": question["name"],
            "sizes": sizes,
            "seconds": median,
            "runs": all_runs,
            "how": "one query per audience",
            "separate_seconds": median,
        }
        if len(audiences) > 1:
            sql = combined_sql(audiences, now)
            if sql is not None:
                c_sizes, c_median, c_runs = timed(con, [sql], runs)
                if c_sizes != sizes:
                    raise SystemExit(
                        f"{question['name']}: the combined query gave {c_sizes}, "
                        f"the separate queries {sizes}"
                    )
                answer["combined_seconds"] = c_median
                if c_median < median:
                    answer.update(
                        seconds=c_median, runs=c_runs, how="all audiences in one query"
                    )
        log(f"{question['name']}: sizes {sizes}, {answer['seconds']:.4f} s ({answer['how']})")
        answers.append(answer)
    out["questions"] = answers
    out["peak_rss_bytes"] = proc_status_bytes("VmHWM:")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
