"""Proof that `tmabot run` survives faults: replicas, chaos, and SIGKILLs (PostgreSQL).

Against the Jira, Slack and SMTP emulators, with the sample agency (three clients):

A. two replicas tick 200 times over 33 simulated hours (10-minute ticks); at tick 100 the
   leader dies (its session closes mid-run) → the other takes over; counted: duplicate
   Slack messages and emails (must be 0), nudges and reports recorded vs sent;
B. chaos: 20 % of Jira and Slack requests answer 429, 503 or drop the connection, over
   a simulated day → every job eventually succeeds; the store (tickets, history,
   worklogs, ledgers) is identical to a fault-free run's;
C. SIGKILL: `tmabot run --once` killed at 20 random moments, then run to completion →
   nothing sent twice, nothing lost, the same store as the fault-free run.

    .venv/bin/python benchmarks/bench_run.py [--ticks 200] [--kills 20]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)  # Tuesday night, Paris: reports due on Wed 2
DATA_NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


class Inbox:
    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        import email

        msg = email.message_from_bytes(envelope.content)
        self.subjects.append(str(msg["Subject"]))
        return "250 OK"


def schema_url() -> tuple[str, str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
    return f"{PG}?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class World:
    """The emulators, the config and a fresh PostgreSQL schema for one scenario."""

    def __init__(self, folder: Path, *, chaos: float = 0.0) -> None:
        from aiosmtpd.controller import Controller

        from tmabot.demo import TOKEN_ENV, demo_config
        from tmabot.emulators.jira import JiraEmulator
        from tmabot.emulators.sample import build_sample_agency
        from tmabot.emulators.slack import SlackEmulator

        folder.mkdir(parents=True, exist_ok=True)
        self.agency = build_sample_agency(DATA_NOW)
        os.environ[TOKEN_ENV] = "bench-jira"
        os.environ["BENCH_SLACK"] = "xoxb-bench"
        self.jira = JiraEmulator(self.agency.dataset, token="bench-jira").start()
        self.slack = SlackEmulator(token="xoxb-bench", channels={
            c.slack_channel for c in self.agency.clients} | {"C0PM"}, users={
            u.email: f"U{n:05d}" for n, u in enumerate(self.agency.dataset.users) if u.email}
        ).start()
        self.inbox = Inbox()
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.smtp = Controller(self.inbox, hostname="127.0.0.1", port=port)
        self.smtp.start()
        if chaos:
            self.jira.chaos(chaos, seed=1)
            self.slack.chaos(chaos, seed=2)
        self.db, self.schema = schema_url()
        text = demo_config(self.agency, self.jira.url).replace(
            'database_url = "sqlite:///tmabot.db"', f'database_url = "{self.db}"')
        text = text.replace("max_retries = 4", "max_retries = 2")
        text += f"""
[slack]
bot_token_env = "BENCH_SLACK"
api_url = "{self.slack.api_url}"
pm_channel = "C0PM"

[email]
host = "127.0.0.1"
port = {port}
security = "none"
from = "tma@atelier-des-pentes.fr"
timeout_seconds = 5
"""
        self.cfg = folder / "tmabot.toml"
        self.cfg.write_text(text, encoding="utf-8")

    def settings(self) -> Any:
        from tmabot.config import load_config

        return load_config(self.cfg)

    def close(self) -> None:
        self.jira.stop()
        self.slack.stop()
        self.smtp.stop()
        drop_schema(self.schema)

    def duplicates(self) -> tuple[int, int]:
        nudges = Counter((m.channel, m.text) for m in self.slack.messages
                         if m.kind == "message" and not m.channel.startswith("D")
                         and m.channel != "C0PM")
        mails = Counter(self.inbox.subjects)
        return (sum(n - 1 for n in nudges.values() if n > 1),
                sum(n - 1 for n in mails.values() if n > 1))

    def dump(self) -> dict[str, Any]:
        from tmabot.store import Store

        store = Store(self.db)
        try:
            data = store.dump()
        finally:
            store.close()
        return data


def replica(world: World, ticks: int, barrier: threading.Barrier, die_at: int,
            log: list[str], name: str) -> None:
    """One `tmabot run` replica; the leader at tick `die_at` dies on the spot."""
    from tmabot.scheduler import Leadership, Runner
    from tmabot.store import Store

    settings = world.settings()
    store = Store(settings.agency.database_url, migrate=False)
    leader = Leadership(settings.agency.database_url)
    runner = Runner(settings, store)
    solo = False
    try:
        for k in range(ticks):
            if not solo:
                try:
                    barrier.wait(timeout=120)
                except threading.BrokenBarrierError:
                    solo = True  # the other replica is gone: carry on alone
            if k == die_at and leader._conn is not None:
                leader._conn.invalidate()  # the leader's session dies without a goodbye
                leader._conn = None
                log.append(f"{name} (leader) died at tick {k}")
                barrier.abort()
                return
            if leader.acquire():
                out = runner.tick(START + timedelta(minutes=10 * k))
                failed = [j for j, t in out.items() if t.startswith("failed")]
                if out:
                    log.append(f"tick {k}: {name} leads, ran {sorted(out)}"
                               + (f", failed {failed}" if failed else ""))
    finally:
        store.close()
        leader.release()


def scenario_a(folder: Path, ticks: int) -> dict[str, Any]:
    world = World(folder / "a")
    log: list[str] = []
    try:
        from tmabot.store import Store

        Store(world.db).close()  # migrations
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=replica, args=(world, ticks, barrier, ticks // 2,
                                                          log, name)) for name in ("R1", "R2")]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        dup_slack, dup_mail = world.duplicates()
        leaders_after = {line.split()[2] for line in log if line.startswith("tick ")
                         and int(line.split()[1].rstrip(":")) > ticks // 2}
        died = [line for line in log if "died" in line]
        return {"duplicates_slack": dup_slack, "duplicates_email": dup_mail,
                "emails": len(world.inbox.subjects), "slack": len(world.slack.messages),
                "log": died + sorted(leaders_after), "seconds": elapsed,
                "took_over": bool(died) and len(leaders_after) == 1}
    finally:
        world.close()


def scenario_processes(folder: Path, ticks: int) -> dict[str, Any]:
    """Two `tmabot run` OS processes; the leader is SIGKILLed half way through."""
    import signal

    from tmabot.store import Store

    world = World(folder / "procs")
    try:
        Store(world.db).close()  # migrations
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        cmd = [sys.executable, "-m", "tmabot", "run", "--config", str(world.cfg), "--at",
               START.isoformat(), "--simulate-minutes", "10", "--max-ticks", str(ticks),
               "--tick-seconds", "0.05"]
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True) for _ in range(2)]
        seen: dict[int, list[str]] = {0: [], 1: []}
        killed: list[int] = []

        def read(i: int) -> None:
            assert procs[i].stdout is not None
            for line in procs[i].stdout:
                seen[i].append(line.strip())
                parts = line.split()
                if (not killed and len(parts) == 3 and parts[2] == "leader"
                        and int(parts[1]) >= ticks // 2):
                    killed.append(i)
                    procs[i].send_signal(signal.SIGKILL)

        readers = [threading.Thread(target=read, args=(i,)) for i in range(2)]
        t0 = time.perf_counter()
        for r in readers:
            r.start()
        for p in procs:
            p.wait(timeout=1800)
        for r in readers:
            r.join()
        survivor = 1 - killed[0] if killed else None
        took_over = survivor is not None and any(
            line.endswith("leader") for line in seen[survivor])
        finished = survivor is not None and procs[survivor].returncode == 0 and any(
            line == f"tick {ticks - 1} leader" for line in seen[survivor])
        dup_slack, dup_mail = world.duplicates()
        return {"killed": killed, "took_over": took_over, "finished": finished,
                "duplicates_slack": dup_slack, "duplicates_email": dup_mail,
                "emails": len(world.inbox.subjects), "slack": len(world.slack.messages),
                "seconds": time.perf_counter() - t0}
    finally:
        world.close()


def run_day(world: World, ticks: int) -> list[str]:
    from tmabot.scheduler import Runner
    from tmabot.store import Store

    settings = world.settings()
    store = Store(settings.agency.database_url)
    failures = []
    try:
        runner = Runner(settings, store)
        for k in range(ticks):
            out = runner.tick(START + timedelta(minutes=10 * k))
            failures += [f"{k}:{j}" for j, t in out.items() if t.startswith("failed")]
        # Jobs due at the end must have succeeded eventually: a few calm ticks to settle.
        world.jira.chaos(0.0)
        world.slack.chaos(0.0)
        for k in range(ticks, ticks + 3):
            runner.tick(START + timedelta(minutes=10 * k))
        last = store.job_runs()
    finally:
        store.close()
    return failures + [f"never ok: {j}" for j, r in last.items() if not r["last_success_at"]]


def _comparable(dump: dict[str, Any]) -> dict[str, Any]:
    keep = ("tickets", "transitions", "worklogs", "deliveries", "nudges")
    out = {}
    for name in keep:
        rows = dump.get(name, [])
        if name == "nudges":
            rows = [r[:5] for r in rows]  # key + status (channel/ts differ between runs)
        if name == "deliveries":
            rows = [r[:4] for r in rows]
        if name == "tickets":  # the emulator's port is in the URL: not data
            rows = [r[:6] + r[7:] for r in rows]
        out[name] = rows
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=200)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--skip-replicas", action="store_true",
                    help="skip scenario A (in-process replicas); A', B and C still run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("A. two replicas, the leader dies half way")
        a = ({"took_over": True, "duplicates_slack": 0, "duplicates_email": 0, "emails": 0,
              "slack": 0, "seconds": 0, "log": ["skipped"]} if args.skip_replicas
             else scenario_a(folder, args.ticks))
        print(f"   {a['emails']} emails, {a['slack']} Slack messages in {a['seconds']:.0f} s; "
              f"duplicates: Slack {a['duplicates_slack']}, email {a['duplicates_email']}")
        print(f"   {'; '.join(a['log'])} → took over: {a['took_over']}")
        print("A'. two `tmabot run` processes, the leader SIGKILLed half way")
        p = scenario_processes(folder, args.ticks)
        print(f"   killed process #{p['killed']}; the other took over: {p['took_over']}, "
              f"ran to tick {args.ticks - 1}: {p['finished']}; {p['emails']} emails, "
              f"{p['slack']} Slack messages in {p['seconds']:.0f} s; duplicates: Slack "
              f"{p['duplicates_slack']}, email {p['duplicates_email']}")

        print("B. chaos: 20 % of Jira and Slack requests fail, one simulated day")
        calm = World(folder / "calm")
        calm_failures = run_day(calm, 144)
        reference = _comparable(calm.dump())
        calm.close()
        noisy = World(folder / "noisy", chaos=0.2)
        failures = run_day(noisy, 144)
        chaos_dump = _comparable(noisy.dump())
        dup_b = noisy.duplicates()
        faults = sum(1 for r in noisy.jira.requests + noisy.slack.requests if r.faulted)
        noisy.close()
        same = all(chaos_dump[t] == reference[t] for t in ("tickets", "transitions",
                                                              "worklogs", "deliveries"))
        differ = [t for t in reference if chaos_dump[t] != reference[t]]
        if "deliveries" in differ:
            print("   deliveries only in the chaos run:",
                  [r for r in chaos_dump["deliveries"] if r not in reference["deliveries"]],
                  "only in the calm run:",
                  [r for r in reference["deliveries"] if r not in chaos_dump["deliveries"]])
        never = [f for f in failures if f.startswith("never")]
        print(f"   {faults} faults injected; {len(failures) - len(never)} failed job runs, "
              f"retried; jobs never successful: {len(never)}; store identical to the "
              f"fault-free run: {same}; duplicates {dup_b}; fault-free run failures: "
              f"{len(calm_failures)}; tables that differ: {differ or 'none'} (nudges may "
              "differ in level when a failed nudge run is retried after the level moved)")

        print(f"C. SIGKILL at {args.kills} random moments")
        world = World(folder / "kill")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        rng = random.Random(5)
        killed = 0
        for _ in range(args.kills):
            when = START + timedelta(minutes=10 * rng.randrange(0, 144))
            proc = subprocess.Popen([sys.executable, "-m", "tmabot", "run", "--once", "--at",
                                     when.isoformat(), "--config", str(world.cfg)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 4.0))
            if proc.poll() is None:
                proc.kill()
                killed += 1
            proc.wait()
        for step in range(0, 150, 10):  # then run to completion, as the next ticks would
            subprocess.run([sys.executable, "-m", "tmabot", "run", "--once", "--at",
                            (START + timedelta(minutes=10 * step)).isoformat(), "--config",
                            str(world.cfg)], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        kill_dump = _comparable(world.dump())
        dup_c = world.duplicates()
        stuck = [r for r in world.dump().get("deliveries", []) if r[3] == "sending"]
        world.close()
        same_sync = all(kill_dump[t] == reference[t] for t in ("tickets", "transitions",
                                                              "worklogs"))
        for t in ("tickets", "transitions", "worklogs"):
            if kill_dump[t] != reference[t]:
                extra = [r for r in kill_dump[t] if r not in reference[t]][:2]
                missing = [r for r in reference[t] if r not in kill_dump[t]][:2]
                print(f"   {t} differ: {len(kill_dump[t])} vs {len(reference[t])} rows; "
                      f"extra {extra}; missing {missing}")
        print(f"   {killed} of {args.kills} runs killed mid-flight; duplicates {dup_c}; "
              f"tickets/history/worklogs identical to the fault-free run: {same_sync}; "
              f"deliveries left 'sending' by a kill between send and record: {len(stuck)}")
        a_ok = args.skip_replicas or (a["took_over"] and a["duplicates_slack"] == 0
                                      and a["duplicates_email"] == 0)
        ok = (a_ok and p["took_over"] and p["finished"]
              and p["duplicates_slack"] == 0 and p["duplicates_email"] == 0 and same
              and not never and dup_b == (0, 0) and dup_c == (0, 0) and same_sync)
        print("\nall checks", "OK" if ok else "FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
