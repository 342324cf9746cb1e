"""SLA benchmark: classification + the three SLA indicators on 1,000,000 synthetic tickets.

Prints, as medians over several runs: tickets/s end to end (classify + response,
resolution and delivery with pauses, due dates and states), business-interval
computations/s of the clock, and the speed ratio against the `businesstimedelta`
package on the same 10,000 intervals, whose figures must be identical.
Targets (issue #3): >= 1,000,000 intervals/s; 1M tickets in <= 5 s on a 2-core machine;
identical figures to businesstimedelta where both apply.

    .venv/bin/python benchmarks/bench_sla.py [--tickets 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tmabot.calendar import BusinessCalendar  # noqa: E402
from tmabot.classify import BUILTIN_RULES, TicketColumns, classify  # noqa: E402
from tmabot.emulators import sample_texts  # noqa: E402
from tmabot.engine import run_batch  # noqa: E402
from tmabot.sla import SlaInput, SlaPolicy, compute, default_targets  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
SPAN = 2 * 365 * 86400.0
NOW = START + SPAN + 30 * 86400.0
TODO, PROG, PAUSE, STAGING, DONE = range(5)
CATEGORY = np.array([0, 1, 1, 1, 2], dtype=np.int8)


def titles(n: int, rng: np.random.Generator) -> list[str]:
    """Realistic, mostly distinct titles: the sample agency's templates + a varying tail."""
    pool = [t for kind in sample_texts.TITLES.values() for group in kind.values() for t in group]
    pool = [p.replace("{minutes}", "12") for p in pool]
    pool += ["Question sur la facture de {m}", "Réunion de suivi {m}", "Divers {m}"]
    words = ["accueil", "panier", "mobile", "footer", "newsletter", "blog", "contact",
             "checkout", "recherche", "catalogue", "compte", "paiement", "admin", "export"]
    picks = rng.integers(0, len(pool), n)
    tails = rng.integers(0, len(words), n)
    nums = rng.integers(1, 100_000, n)
    return [f"{pool[p]} — {words[w]} #{k}".replace("{m}", words[w])
            for p, w, k in zip(picks.tolist(), tails.tolist(), nums.tolist(), strict=True)]


def dataset(n: int, seed: int = 1) -> tuple[TicketColumns, SlaInput, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    created = np.floor(START + rng.random(n) * SPAN)
    counts = np.clip(rng.poisson(5, n), 0, 12)
    m = int(counts.sum())
    tk = np.repeat(np.arange(n, dtype=np.int64), counts)
    first = np.zeros(m, dtype=bool)
    first[np.concatenate([[0], np.cumsum(counts)[:-1]])[counts > 0]] = True
    gaps = np.floor(rng.exponential(6 * 3600.0, m)) + 60
    csum = np.cumsum(gaps)
    base = np.maximum.accumulate(np.where(first, np.arange(m), 0))
    at = created[tk] + csum - (csum - gaps)[base]
    to = rng.choice([PROG, PAUSE, STAGING, DONE, TODO], m, p=[0.42, 0.15, 0.15, 0.23, 0.05])
    last = np.zeros(m, dtype=bool)
    last[np.cumsum(counts)[counts > 0] - 1] = True
    to = np.where(last & (rng.random(m) < 0.7), DONE, to)
    frm = np.empty(m, dtype=np.int64)
    frm[1:] = to[:-1]
    frm[first] = TODO
    order = np.lexsort((at, tk))
    data = SlaInput(
        created=created, initial_category=np.zeros(n, dtype=np.int8),
        initial_pause=np.zeros(n, dtype=bool), initial_staging=np.zeros(n, dtype=bool),
        t_ticket=tk[order], t_at=at[order], t_from_category=CATEGORY[frm][order],
        t_to_category=CATEGORY[to][order], t_to_pause=(to == PAUSE)[order],
        t_to_staging=(to == STAGING)[order], t_from_staging=(frm == STAGING)[order])
    types = np.array(["Bug", "Task", "Story", "Incident", "Improvement"], dtype=object)
    labels_pool = [(), (), (), ("bug",), ("maj",), ("run",), ("supervision",), ("client",)]
    label_pick = rng.integers(0, len(labels_pool), n)
    cols = TicketColumns(
        titles=titles(n, rng), issue_types=list(types[rng.integers(0, 5, n)]),
        labels=[labels_pool[i] for i in label_pick.tolist()], components=[()] * n,
        projects=[f"P{i % 40}" for i in range(n)],
        hours=np.round(rng.exponential(1.5, n), 2))
    priority = rng.choice(4, n, p=[0.05, 0.2, 0.45, 0.3]).astype(np.int8)
    critique = rng.random(n) < 0.2  # a fifth of the tickets belong to Critique clients
    return cols, data, priority, critique


def end_to_end(cols: TicketColumns, data: SlaInput, priority: np.ndarray,
               critique: np.ndarray, cal: BusinessCalendar) -> dict[str, Any]:
    began = time.perf_counter()
    business, crit = SlaPolicy(default_targets("business")), SlaPolicy(default_targets("critique"))
    tb, ab = business.arrays(priority, cal)
    tc, ac = crit.arrays(priority, cal)
    targets = {k: np.where(critique, tc[k], tb[k]) for k in tb}
    absolute = np.where(critique, ac, ab)
    result, sla = run_batch(cols, BUILTIN_RULES, data, now=NOW, calendar=cal, targets=targets,
                            absolute=absolute, run_hours_allowance=2.0)
    done = time.perf_counter()
    # The two halves alone, for the record (not part of the end-to-end figure).
    t0 = time.perf_counter()
    classify(cols, BUILTIN_RULES, run_hours_allowance=2.0)
    t1 = time.perf_counter()
    compute(data, now=NOW, calendar=cal, targets=targets, absolute=absolute)
    t2 = time.perf_counter()
    states = {k: np.bincount(v.state, minlength=6) for k, v in sla.indicators.items()}
    return {"seconds": done - began, "classify": t1 - t0, "sla": t2 - t1,
            "unclassified": int((result.category == "non_classe").sum()), "states": states}


def intervals(n: int, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = np.floor(START + rng.random(n) * SPAN)
    b = a + np.floor(rng.exponential(3 * 86400.0, n))
    return a, b


def reference(a: np.ndarray, b: np.ndarray, cal: BusinessCalendar) -> tuple[float, list[float]]:
    """The same intervals through businesstimedelta (Paris hours, lunch break, FR holidays)."""
    import businesstimedelta
    import holidays
    import pytz

    tz = pytz.timezone("Europe/Paris")
    workday = businesstimedelta.WorkDayRule(start_time=dtime(9), end_time=dtime(18),
                                            working_days=[0, 1, 2, 3, 4], tz=tz)
    lunch = businesstimedelta.LunchTimeRule(start_time=dtime(12, 30), end_time=dtime(13, 30),
                                            working_days=[0, 1, 2, 3, 4], tz=tz)
    fr = businesstimedelta.HolidayRule(holidays.country_holidays("FR", years=range(2024, 2029)),
                                       tz=tz)
    rules = businesstimedelta.Rules([workday, lunch, fr])
    began = time.perf_counter()
    out = []
    for s, e in zip(a.tolist(), b.tolist(), strict=True):
        d = rules.difference(datetime.fromtimestamp(s, UTC).astimezone(tz),
                             datetime.fromtimestamp(e, UTC).astimezone(tz))
        out.append(d.hours * 3600.0 + d.seconds)
    return time.perf_counter() - began, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    cal = BusinessCalendar()
    print(f"generating {args.tickets:,} tickets …", flush=True)
    cols, data, priority, critique = dataset(args.tickets)
    print(f"dataset: {data.n:,} tickets, {data.t_ticket.size:,} transitions "
          f"({data.t_ticket.size / data.n:.1f}/ticket)")
    cal.between(data.created[:10], data.created[:10] + 1)  # index built outside the timing

    runs = []
    for run in range(args.runs):
        r = end_to_end(cols, data, priority, critique, cal)
        runs.append(r)
        print(f"  run {run + 1}: {r['seconds']:.2f} s end to end, {data.n / r['seconds']:,.0f} "
              f"tickets/s (alone: classify {r['classify']:.2f} s, SLA {r['sla']:.2f} s; "
              f"side by side on two threads in the run)")
    states = runs[-1]["states"]
    for name, counts in states.items():
        print(f"    {name:<10} " + ", ".join(
            f"{s} {c:,}" for s, c in zip(("met", "breached", "at_risk", "running",
                                          "not_started", "none"), counts.tolist(),
                                         strict=True)))
    print(f"    unclassified: {runs[-1]['unclassified']:,}")

    a, b = intervals(1_000_000)
    speeds = []
    for _ in range(max(3, args.runs)):
        began = time.perf_counter()
        cal.between(a, b)
        speeds.append(a.size / (time.perf_counter() - began))
    a10, b10 = a[:10_000], b[:10_000]
    ours_t = []
    for _ in range(5):
        began = time.perf_counter()
        ours = cal.between(a10, b10)
        ours_t.append(time.perf_counter() - began)
    ref_t, ref = reference(a10, b10, cal)
    same = int(np.sum(np.abs(ours - np.asarray(ref)) < 1e-6))

    seconds = statistics.median(r["seconds"] for r in runs)
    ips = statistics.median(speeds)
    ratio = ref_t / statistics.median(ours_t)
    print()
    print(f"{'end to end, 1M tickets (median s)':<58}{seconds:>10.2f}  target <= 5     "
          f"{'OK' if seconds <= 5 * args.tickets / 1e6 else 'MISSED'}")
    print(f"{'tickets/s (median)':<58}{data.n / seconds:>10,.0f}")
    print(f"{'business intervals/s (median, 1M intervals)':<58}{ips:>10,.0f}  "
          f"target >= 1,000,000  {'OK' if ips >= 1e6 else 'MISSED'}")
    print(f"{'speed ratio vs businesstimedelta (10,000 intervals)':<58}{ratio:>10,.0f}x")
    print(f"{'identical figures to businesstimedelta':<58}{same:>5} / {a10.size}  "
          f"{'OK' if same == a10.size else 'MISSED'}")
    return 0 if same == a10.size else 1


if __name__ == "__main__":
    sys.exit(main())
