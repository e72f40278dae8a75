#!/usr/bin/env python3
"""The figures of tools/bench-restore, from what its runs left in WORK: summaries (NAME.json),
debug logs with `timing` marks (NAME.log), wall times (NAME.wall), peak RSS (NAME.rss), the
engine's statement time (NAME.engine) and journals (NAME.sqlite). Usage: WORK ROUNDS PARTS."""
import datetime, json, os, re, sqlite3, statistics, sys

work, rounds, parts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
load = lambda name: json.load(open(f"{work}/{name}.json"))
PHASES = ["config loaded", "server checked", "backup opened", "journal opened", "planned", "run journaled",
          "merges stopped", "tables done"]


def journal(name, sql):
    db = sqlite3.connect(f"file:{work}/{name}.sqlite?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def at(text):  # 2026-12-03T09:00:00.123456789Z
    return datetime.datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()


def step_seconds(name):
    """Per step kind: steps, and the sum of each step's time from its first started to its end."""
    rows = journal(name, """SELECT e.id, e.kind, t.to_state, t.at FROM transitions t JOIN events e ON e.id = t.event_id
                            WHERE t.to_state IN ('started', 'done', 'failed') ORDER BY t.id""")
    began, total, count = {}, {}, {}
    for event, kind, state, when in rows:
        if state == "started":
            began.setdefault(event, at(when))
        elif event in began:
            total[kind] = total.get(kind, 0.0) + at(when) - began.pop(event)
            count[kind] = count.get(kind, 0) + 1
    return {k: {"steps": count[k], "seconds": round(total[k], 3)} for k in sorted(total)}


def wall(name):
    t0, t1 = map(float, open(f"{work}/{name}.wall").read().split())
    return t0, t1


def engine(name):
    """Per kind, and the statements' sum (the server's own `_session` and `_parse` left out)."""
    spent = json.load(open(f"{work}/{name}.engine"))
    return {k: v for k, v in spent.items()}, sum(v["seconds"] for k, v in spent.items() if not k.startswith("_"))


def engine_held(spent):
    """Seconds the engine was held: statements, and the server's USE/SET around them and parsing."""
    return sum(v["seconds"] for v in spent.values())


def breakdown(name):
    """Seconds from the process's start to each timing mark, and from the last one to exit."""
    t0, t1 = wall(name)
    marks = {}
    for line in open(f"{work}/{name}.log"):
        m = re.search(r"timing (.+) at (\d+\.\d+)", line)
        if m:
            marks.setdefault(m.group(1), float(m.group(2)))
    out, last = {}, t0
    for phase in PHASES:
        if phase in marks:
            out[phase] = round(marks[phase] - last, 3)
            last = marks[phase]
    out["exit"] = round(t1 - last, 3)
    return out


report = {"benchmark": "restore"}
if rounds > 0:
    full = [f"full-{r}" for r in range(1, rounds + 1)]
    for n in full:
        assert load(n)["state"] == "done", load(n)
    t_full = statistics.median(wall(n)[1] - wall(n)[0] for n in full)
    b_full = statistics.median(load(n)["bytes_downloaded"] for n in full)
    small = {"tables": 20, "parts_per_table": 20, "rounds": rounds,
             "full_seconds": [round(wall(n)[1] - wall(n)[0], 3) for n in full], "full_bytes": b_full}
    for shape in ("newest", "middle"):
        runs = [f"ip-{shape}-{r}" for r in range(1, rounds + 1)]
        for n in runs:
            assert load(n)["state"] == "done", load(n)
        walls = [wall(n)[1] - wall(n)[0] for n in runs]
        t_ip = statistics.median(walls)
        b_ip = statistics.median(load(n)["bytes_downloaded"] for n in runs)
        middle_run = runs[sorted(range(len(runs)), key=lambda i: walls[i])[len(runs) // 2]]
        spent, engine_total = engine(middle_run)
        small[f"lost_{shape}"] = {
            "inplace_seconds": [round(w, 3) for w in walls], "inplace_bytes": b_ip,
            "wall_ratio_inplace_over_full": round(t_ip / t_full, 3),
            "bytes_ratio_inplace_over_full": round(b_ip / b_full, 3),
            "resequenced_parts": journal(runs[0], "SELECT count(*) FROM events WHERE kind = 'detach-part'")[0][0],
            "downloads": journal(runs[0], "SELECT count(*) FROM events WHERE kind = 'download-part'")[0][0],
            "median_run": {"name": middle_run, "phases_seconds": breakdown(middle_run),
                           "steps_by_kind": step_seconds(middle_run),
                           "engine_seconds": round(engine_total, 3),
                           "engine_by_kind": {k: v for k, v in spent.items()},
                           "journal_seconds": round(load(middle_run)["journal_seconds"], 3)}}
    report["small_in_place_vs_full"] = small
if parts > 0:
    jc = load("jc")
    assert jc["state"] == "done", jc
    t0, t1 = wall("jc")
    spent, engine_total = engine("jc")
    restore_kinds = ("ATTACH", "CHECK", "DROP", "DETACH")
    statements = sum(v["seconds"] for k, v in spent.items() if k in restore_kinds)
    alone = statistics.median(load(f"alone-{r}")["seconds"] for r in (1, 2, 3))
    verify = step_seconds("jc").get("verify-table", {"seconds": 0.0, "steps": 0})
    report["whole_restore"] = {
        "parts": parts, "tables": 100, "events": jc["events"], "wall_seconds": round(t1 - t0, 3),
        "engine_seconds_all_statements": round(engine_total, 3),
        "engine_seconds_attach_check_drop_detach": round(statements, 3),
        "engine_by_kind": spent,
        "wall_over_engine_all": round((t1 - t0) / engine_total, 3),
        "engine_seconds_held": round(engine_held(spent), 3),
        "wall_over_engine_held": round((t1 - t0) / engine_held(spent), 3),
        "wall_over_engine_attach_check_drop_detach": round((t1 - t0) / statements, 3),
        "peak_rss_mb": round(int(open(f"{work}/jc.rss").read().split()[-1]) / 1024, 1),
        "phases_seconds": breakdown("jc") if "timing" in open(f"{work}/jc.log").read() else None,
        "journal_alone_seconds": round(alone, 3), "journal_alone_share": round(alone / (t1 - t0), 4),
        "journal_seconds": round(jc["journal_seconds"], 3), "journal_share": round(jc["journal_seconds"] / (t1 - t0), 4),
        "journal_cpu_seconds": round(jc["journal_cpu_seconds"], 3),
        "journal_cpu_share": round(jc["journal_cpu_seconds"] / (t1 - t0), 4),
        "metrics_file_interval_seconds": float(os.environ.get("BENCH_METRICS_INTERVAL", "5")),
        "metrics_file_seconds": round(jc["metrics_seconds"], 4),
        "metrics_file_share": round(jc["metrics_seconds"] / (t1 - t0), 5),
        "metrics_file_cpu_seconds": round(jc["metrics_cpu_seconds"], 4),
        "metrics_file_cpu_share": round(jc["metrics_cpu_seconds"] / (t1 - t0), 5),
        "equality_check": {"tables": verify["steps"], "seconds": verify["seconds"],
                           "share": round(verify["seconds"] / (t1 - t0), 4)}}
print(json.dumps(report, indent=1))
