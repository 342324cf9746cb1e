"""Sync benchmark: 20,000 Jira issues from an emulator in another process.

Prints, over several runs (medians): requests made vs the API floor for the data,
issues/s of a full sync, requests of an incremental sync with 1 % changed and with
no change, and the sync process's peak RSS. Targets (issue #2): requests <= 1.1 x
floor; no-change incremental <= 2 requests per project; >= 2,000 issues/s; peak RSS
<= 400 MB.

    .venv/bin/python benchmarks/bench_sync.py [--issues 20000] [--runs 3] [--comments]

`--comments` turns `[sla] response_on_comment` on: every issue gets 0-4 comments and 1 %
get 60 (over the inline 50), which are read per issue; the floor counts those pages.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _procs import ask, run_in_process  # noqa: E402

PROJECTS = ["BLK1", "BLK2", "BLK3", "BLK4"]
TOKEN = "bench-token-not-a-secret"
DATA_NOW = datetime(2026, 6, 1, tzinfo=UTC)  # the dataset lives in the past
PAGE_CAP, CL_CAP, WL_CAP = 100, 40, 20
CM_CAP, CM_PAGE = 50, 100  # comments inline in a search, per issue/{id}/comment page


# -- the emulator process -----------------------------------------------------------
def floor_full(ds: Any) -> dict[str, int]:
    """The fewest requests that can read this data, given the API's documented limits."""
    per_project: dict[str, int] = {}
    trunc_cl = trunc_wl = hist_trunc = missing_wl = 0
    for issue in ds.issues:
        per_project[issue.project_key] = per_project.get(issue.project_key, 0) + 1
        if len(issue.histories) > CL_CAP:
            trunc_cl += 1
            hist_trunc += len(issue.histories)
        if len(issue.worklogs) > WL_CAP:
            trunc_wl += 1
            missing_wl += len(issue.worklogs) - WL_CAP
    site_wl = sum(len(i.worklogs) for i in ds.issues)
    comments = sum(math.ceil(len(i.comments) / CM_PAGE) for i in ds.issues
                   if len(i.comments) > CM_CAP)
    return {
        "comments": comments,
        "probe": 3,  # serverInfo, myself, status
        "search": sum(math.ceil(n / PAGE_CAP) for n in per_project.values()),
        "changelog": max(math.ceil(trunc_cl / 1000), math.ceil(hist_trunc / 10000)),
        # per issue, or the site's worklog feed + listing the missing ones: the cheaper
        "worklogs": min(trunc_wl, math.ceil(site_wl / 1000) + math.ceil(missing_wl / 1000)),
    }


def mutate(ds: Any, share: float, seed: int = 5) -> dict[str, int]:
    """Change `share` of the issues like users do; return the incremental floor."""
    rng = random.Random(seed)
    now = datetime.now(UTC) - timedelta(minutes=2)  # older than the worklog feed's lag
    chosen = rng.sample(ds.issues, int(len(ds.issues) * share))
    users = [u.account_id for u in ds.users]
    for n, issue in enumerate(chosen):
        if n % 3 == 0:
            ds.edit_issue(issue.key, at=now, summary=issue.summary + " (modifié)")
        elif n % 3 == 1:
            ds.add_worklog(issue.key, rng.choice(users), now - timedelta(hours=1), 900, at=now)
        elif issue.worklogs:
            ds.delete_worklog(issue.worklogs[0].id, at=now)
        else:
            ds.edit_issue(issue.key, at=now, labels=[*issue.labels, "maj"])
    per_project: dict[str, int] = dict.fromkeys(PROJECTS, 0)
    for issue in chosen:
        per_project[issue.project_key] += 1
    trunc_cl = sum(1 for i in chosen if len(i.histories) > CL_CAP)
    trunc_wl = sum(1 for i in chosen if len(i.worklogs) > WL_CAP)
    comments = sum(math.ceil(len(i.comments) / CM_PAGE) for i in chosen
                   if len(i.comments) > CM_CAP)
    return {
        "comments": comments,
        "search": sum(max(1, math.ceil(n / PAGE_CAP)) for n in per_project.values()),
        "changelog": math.ceil(trunc_cl / 1000),
        "worklogs": trunc_wl,
        "changed": len(chosen),
    }


def add_comments(ds: Any, seed: int = 13) -> None:
    """0-4 comments per issue by its people, 60 on 1 % of the issues."""
    from tmabot.emulators.dataset import JiraComment

    rng = random.Random(seed)
    users = [u.account_id for u in ds.users]
    next_id = 9_000_000
    for issue in ds.issues:
        n = 60 if rng.random() < 0.01 else rng.randint(0, 4)
        for k in range(n):
            next_id += 1
            issue.comments.append(JiraComment(str(next_id), issue.id, rng.choice(users),
                                              issue.created + timedelta(minutes=7 * (k + 1)),
                                              "Pris en compte."))
    ds.touch()


def emulator_process(conn: Any, n_issues: int, comments: bool) -> None:
    from tmabot.emulators.jira import JiraEmulator
    from tmabot.emulators.sample import build_bulk_dataset

    ds = build_bulk_dataset(n_issues, projects=PROJECTS, now=DATA_NOW, seed=11,
                            inline_changelog_cap=CL_CAP, inline_worklog_cap=WL_CAP)
    if comments:
        add_comments(ds)
    with JiraEmulator(ds, token=TOKEN, max_results_cap=PAGE_CAP, inline_changelog_cap=CL_CAP,
                      inline_worklog_cap=WL_CAP, inline_comment_cap=CM_CAP,
                      comment_page_cap=CM_PAGE) as emu:
        stats = {
            "issues": len(ds.issues),
            "histories": sum(len(i.histories) for i in ds.issues),
            "worklogs": sum(len(i.worklogs) for i in ds.issues),
            "over_cl_cap": sum(1 for i in ds.issues if len(i.histories) > CL_CAP),
            "over_wl_cap": sum(1 for i in ds.issues if len(i.worklogs) > WL_CAP),
            "comments": sum(len(i.comments) for i in ds.issues),
            "over_cm_cap": sum(1 for i in ds.issues if len(i.comments) > CM_CAP),
        }
        conn.send((emu.url, stats, floor_full(ds)))
        while True:
            cmd, arg = conn.recv()
            if cmd == "count":
                conn.send(emu.count())
            elif cmd == "reset":
                emu.reset_log()
                conn.send(None)
            elif cmd == "mutate":
                conn.send(mutate(ds, arg))
            elif cmd == "stop":
                conn.send(None)
                return


# -- the sync process (measured alone) ------------------------------------------------
def sync_process(conn: Any, config: str, full: bool) -> None:
    from tmabot.config import load_config
    from tmabot.store import Store
    from tmabot.sync import sync

    settings = load_config(Path(config))
    store = Store(settings.agency.database_url)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    result = sync(settings, store, full=full)
    elapsed = time.perf_counter() - began
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    store.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send({"seconds": elapsed, "cpu": cpu, "written": result.tickets_written,
               "seen": result.tickets_seen, "rss_mb": rss_mb})


def run_sync(ctx: Any, config: Path, full: bool = False) -> dict[str, Any]:
    return run_in_process(ctx, sync_process, str(config), full)


def write_config(folder: Path, url: str, db_url: str, comments: bool = False) -> Path:
    path = folder / "tmabot.toml"
    projects = ", ".join(f'"{p}"' for p in PROJECTS)
    sla = ('[sla]\nresponse_on_comment = true\nagency_domains = ["atelier-des-pentes.fr"]\n'
           if comments else "")
    path.write_text(f"""
[agency]
name = "Bench"
timezone = "Europe/Paris"
database_url = "{db_url}"

{sla}
[trackers.bench-jira]
kind = "jira"
url = "{url}"
deployment = "cloud"
email = "bot@agency.example"
token_env = "BENCH_JIRA_TOKEN"

[[clients]]
id = "bench"
name = "Bench"
tracker = "bench-jira"
projects = [{projects}]

[clients.contract]
model = "forfait"
tier = "critique"
start = "2025-01-01"
monthly_fee = "1.00"
hourly_rate = "1.00"
""", encoding="utf-8")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--issues", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--database-url", default=None,
                    help="default: a fresh SQLite file per run")
    ap.add_argument("--tmpdir", default=None, help="where the SQLite files go (default: $TMPDIR)")
    ap.add_argument("--comments", action="store_true",
                    help="[sla] response_on_comment on, with comments in the data")
    args = ap.parse_args()
    os.environ["BENCH_JIRA_TOKEN"] = TOKEN
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    emu_proc = ctx.Process(target=emulator_process, args=(child, args.issues, args.comments),
                           daemon=True)
    emu_proc.start()
    url, data, floor = parent.recv()
    floor_total = sum(floor.values())
    print(f"dataset: {data['issues']} issues, {data['histories']} histories "
          f"({data['histories'] / data['issues']:.1f}/issue), {data['worklogs']} worklogs "
          f"({data['worklogs'] / data['issues']:.1f}/issue); over the inline caps: "
          f"{data['over_cl_cap']} changelogs, {data['over_wl_cap']} worklog sets"
          + (f"; {data['comments']} comments, {data['over_cm_cap']} threads over the inline "
             f"{CM_CAP}" if args.comments else ""))
    print(f"API floor for a full sync: {floor_total} requests {floor}")

    full_runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=args.tmpdir) as tmp:
        config = Path(tmp) / "cfg"
        for run in range(args.runs):
            folder = Path(tmp) / f"run{run}"
            folder.mkdir()
            db_url = args.database_url or f"sqlite:///{folder / 'tmabot.db'}"
            config = write_config(folder, url, db_url, args.comments)
            ask(parent, "reset")
            out = run_sync(ctx, config, full=True)
            out["requests"] = ask(parent, "count")
            full_runs.append(out)
            print(f"  full run {run + 1}: {out['seconds']:.2f} s, "
                  f"{data['issues'] / out['seconds']:.0f} issues/s (sync CPU {out['cpu']:.2f} s), "
                  f"{out['requests']} requests, "
                  f"peak RSS {out['rss_mb']:.0f} MB")
        # Incremental runs on the last run's store.
        ask(parent, "reset")
        nochange = run_sync(ctx, config)
        nochange_requests = ask(parent, "count")
        inc_floor = ask(parent, "mutate", 0.01)
        ask(parent, "reset")
        inc = run_sync(ctx, config)
        inc_requests = ask(parent, "count")
    ask(parent, "stop")
    emu_proc.join(10)

    rate = statistics.median(data["issues"] / r["seconds"] for r in full_runs)
    req = statistics.median(r["requests"] for r in full_runs)
    rss = max(r["rss_mb"] for r in full_runs + [nochange, inc])
    inc_floor_total = (inc_floor["search"] + inc_floor["changelog"] + inc_floor["worklogs"]
                       + inc_floor["comments"])
    rows = [
        ("full sync requests / floor", f"{req:.0f} / {floor_total} = {req / floor_total:.3f}",
         "<= 1.1", req <= 1.1 * floor_total),
        ("full sync issues/s (median)", f"{rate:.0f}", ">= 2000", rate >= 2000),
        ("incremental, no change: requests per project",
         f"{nochange_requests} / {len(PROJECTS)} = {nochange_requests / len(PROJECTS):.2f}",
         "<= 2", nochange_requests <= 2 * len(PROJECTS)),
        (f"incremental, {inc_floor['changed']} changed (1 %): requests / floor",
         f"{inc_requests} / {inc_floor_total} = {inc_requests / inc_floor_total:.2f}",
         "<= 1.1", inc_requests <= 1.1 * inc_floor_total),
        ("incremental, 1 % changed: tickets written", f"{inc['written']}",
         f"= {inc_floor['changed']}", inc["written"] == inc_floor["changed"]),
        ("peak RSS of the sync process (MB)", f"{rss:.0f}", "<= 400", rss <= 400),
    ]
    print()
    width = max(len(r[0]) for r in rows)
    for name, value, target, ok in rows:
        print(f"{name:<{width}}  {value:>24}  target {target:<8} {'OK' if ok else 'MISSED'}")
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
