"""Linear sync benchmark: 10,000 issues with state history, from an emulator in another process.

Prints, over several runs (medians): requests made vs the floor for the data
(probe + ⌈N / page⌉ issue pages + the extra history pages of issues whose history does not
fit inline), issues/s of a full sync, and the requests of an incremental sync with nothing
changed and with 1 % changed.

    .venv/bin/python benchmarks/bench_linear.py [--issues 10000] [--runs 3] [--comments]

`--comments` turns `[sla] response_on_comment` on: 0-3 comments per issue, 15 on 2 % (over
the 5 inline, read per issue), and each incremental sync asks which issues were commented.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _procs import ask, run_in_process  # noqa: E402

from connectors.linear import COMMENTS_INLINE, HISTORY_PAGE  # noqa: E402  (the floor's sizes)

KEY = "lin_api_bench_not_a_secret"
TEAMS = ["WEB", "APP"]
START = datetime(2025, 6, 1, tzinfo=UTC)


def dataset(n: int, seed: int = 3, comments: bool = False) -> Any:
    from tmabot.emulators.linear import (
        LinearDataset,
        LinearHistory,
        LinearIssue,
        LinearState,
        LinearTeam,
        LinearUser,
    )

    rng = random.Random(seed)
    ds = LinearDataset(org_name="Bench", url_key="bench")
    ds.teams = [LinearTeam(f"team-{t}", t, t) for t in TEAMS]
    kinds = [("Todo", "unstarted"), ("In Progress", "started"), ("Waiting", "started"),
             ("In Review", "started"), ("Done", "completed"), ("Canceled", "canceled")]
    for t in TEAMS:
        ds.states += [LinearState(f"{t}-{k}", name, kind, t) for k, (name, kind)
                      in enumerate(kinds)]
    ds.users = [LinearUser(f"u{k}", f"Dev {k}", f"dev{k}@agence.fr") for k in range(8)]
    for i in range(n):
        team = TEAMS[i % len(TEAMS)]
        created = START + timedelta(minutes=43 * i)
        long = rng.random() < 0.02
        entries = rng.randint(40, 90) if long else rng.randint(3, 10)
        issue = LinearIssue(
            id=f"i{i:06d}", identifier=f"{team}-{i // len(TEAMS) + 1}", team_key=team,
            title=f"Ticket {i}: formulaire cassé", state_id=f"{team}-0", created_at=created,
            updated_at=created, priority=rng.randint(0, 4), estimate=rng.choice([1, 2, 3]),
            assignee_id=f"u{rng.randint(0, 7)}", creator_id="u0",
            labels=rng.sample(["Bug", "Maintenance", "Client", "Run"], rng.randint(0, 2)))
        at = created
        state = 0
        for h in range(entries):
            at += timedelta(minutes=rng.randint(5, 600))
            if rng.random() < 0.35:  # not a state change (label, assignee...)
                issue.history.append(LinearHistory(f"{issue.id}-h{h}", at, "u1"))
                continue
            nxt = rng.choice([k for k in range(1, 6) if k != state])
            issue.history.append(LinearHistory(f"{issue.id}-h{h}", at, "u1",
                                               f"{team}-{state}", f"{team}-{nxt}"))
            state = nxt
        issue.state_id = f"{team}-{state}"
        issue.updated_at = at
        ds.issues.append(issue)
        if comments:
            for k in range(15 if rng.random() < 0.02 else rng.randint(0, 3)):
                ds.comment(issue.id, f"u{rng.randint(0, 7)}", created + timedelta(minutes=k + 1))
    return ds


def floor(ds: Any, page: int, inline: int) -> dict[str, int]:
    pages = sum(math.ceil(sum(1 for i in ds.issues if i.team_key == t) / page) for t in TEAMS)
    extra = sum(math.ceil((len(i.history) - inline) / HISTORY_PAGE) for i in ds.issues
                if len(i.history) > inline)
    comments = sum(math.ceil((len(i.comments) - COMMENTS_INLINE) / HISTORY_PAGE)
                   for i in ds.issues if len(i.comments) > COMMENTS_INLINE)
    return {"probe": 2, "issues": pages, "history": extra, "comments": comments}


def emulator_process(conn: Any, n: int, comments: bool) -> None:
    from tmabot.emulators.linear import LinearEmulator

    ds = dataset(n, comments=comments)
    with LinearEmulator(ds, api_key=KEY) as emu:
        conn.send((emu.endpoint, len(ds.issues), sum(len(i.history) for i in ds.issues)))
        while True:
            cmd, arg = conn.recv()
            if cmd == "count":
                conn.send(emu.count())
            elif cmd == "reset":  # each run in its own rate-limit hour, like a real sync
                emu.reset_log()
                emu.reset_budget()
                conn.send(None)
            elif cmd == "floor":
                conn.send(floor(ds, *arg))
            elif cmd == "complexity":
                conn.send(emu.max_complexity_seen)
            elif cmd == "mutate":
                rng = random.Random(arg[0])
                later = max(i.updated_at for i in ds.issues) + timedelta(minutes=1)
                picked = rng.sample(ds.issues, max(1, len(ds.issues) // 100))
                for issue in picked:
                    done = f"{issue.team_key}-4"
                    target = done if issue.state_id != done else f"{issue.team_key}-1"
                    ds.move(issue.id, target, later, "u2")
                inline = arg[1]
                extra = sum(math.ceil((len(i.history) - inline) / HISTORY_PAGE)
                            for i in picked if len(i.history) > inline)
                if comments:  # re-read changed issues with a long thread complete it
                    extra += sum(math.ceil((len(i.comments) - COMMENTS_INLINE) / HISTORY_PAGE)
                                 for i in picked if len(i.comments) > COMMENTS_INLINE)
                conn.send((len(picked), extra))
            elif cmd == "stop":
                conn.send(None)
                return


def sync_process(conn: Any, config: str, full: bool) -> None:
    from tmabot.config import load_config
    from tmabot.store import Store
    from tmabot.sync import connector_for, sync

    settings = load_config(Path(config))
    store = Store(settings.agency.database_url)
    began = time.perf_counter()
    result = sync(settings, store, full=full)
    elapsed = time.perf_counter() - began
    c = connector_for(settings, "bench-linear")
    sizes = (c.page_size, c.history_size)
    c.close()
    store.close()
    conn.send({"seconds": elapsed, "written": result.tickets_written, "sizes": sizes})


def run_sync(ctx: Any, config: Path, full: bool = False) -> dict[str, Any]:
    return run_in_process(ctx, sync_process, str(config), full)


def write_config(folder: Path, url: str, comments: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tmabot.toml"
    teams = ", ".join(f'"{t}"' for t in TEAMS)
    path.write_text(f"""
[agency]
name = "Bench"
database_url = "sqlite:///{folder / 'bench.db'}"
{'[sla]' + chr(10) + 'response_on_comment = true' + chr(10) + 'agency_domains = ["agence.fr"]'
 if comments else ''}

[trackers.bench-linear]
kind = "linear"
url = "{url}"
token_env = "BENCH_LINEAR_KEY"

[[clients]]
id = "bench"
name = "Bench"
tracker = "bench-linear"
projects = [{teams}]

[clients.contract]
model = "sla"
tier = "critique"
start = "2025-01-01"
""", encoding="utf-8")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--issues", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--comments", action="store_true",
                    help="[sla] response_on_comment on, with comments in the data")
    args = ap.parse_args()
    os.environ["BENCH_LINEAR_KEY"] = KEY
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    emu = ctx.Process(target=emulator_process, args=(child, args.issues, args.comments),
                      daemon=True)
    emu.start()
    url, n, histories = parent.recv()
    print(f"dataset: {n:,} issues, {histories:,} history entries "
          f"({histories / n:.1f}/issue, about a third not state changes)")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            ask(parent, "reset")
            cfg = write_config(Path(tmp) / f"run{run}", url, args.comments)
            out = run_sync(ctx, cfg, full=True)
            out["requests"] = ask(parent, "count")
            runs.append(out)
            print(f"  full run {run + 1}: {out['seconds']:.2f} s, "
                  f"{n / out['seconds']:,.0f} issues/s, {out['requests']} requests")
        page, inline = runs[-1]["sizes"]
        fl = ask(parent, "floor", (page, inline))
        floor_total = sum(fl.values())
        ask(parent, "reset")
        run_sync(ctx, cfg)
        no_change = ask(parent, "count")
        changed, extra_history = ask(parent, "mutate", (7, inline))
        ask(parent, "reset")
        inc = run_sync(ctx, cfg)
        inc_requests = ask(parent, "count")
        complexity = ask(parent, "complexity")
    ask(parent, "stop")
    requests = statistics.median(r["requests"] for r in runs)
    ips = statistics.median(n / r["seconds"] for r in runs)
    inc_floor = sum(math.ceil(changed / len(TEAMS) / page) for _ in TEAMS) + extra_history
    if args.comments:  # which issues were commented since: one question per team
        inc_floor += len(TEAMS)
    print(f"page size {page} issues, {inline} history entries inline; API floor {floor_total} "
          f"requests {fl}")
    print()
    print(f"{'full sync requests / floor':<52}{requests:>6.0f} / {floor_total} = "
          f"{requests / floor_total:.3f}")
    print(f"{'full sync issues/s (median)':<52}{ips:>10,.0f}")
    print(f"{'incremental, no change: requests per team':<52}{no_change / len(TEAMS):>10.1f}")
    print(f"{'incremental, ' + str(changed) + ' changed (1 %): requests / floor':<52}"
          f"{inc_requests:>6} / {inc_floor}   ({inc['written']} tickets written)")
    print(f"{'highest query complexity seen (Linear caps at 10,000)':<52}{complexity:>10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
