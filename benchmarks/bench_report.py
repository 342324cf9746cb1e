"""Report benchmark: 100 clients' monthly reports (HTML + PDF + four charts) on 2 cores.

The sample agency is synced once (not timed); then 100 reports — its three clients over
recent months, standing for 100 client-months — are assembled from the store, charted and
rendered to HTML and PDF by a pool of worker processes (one per core), as a monthly run
would do. Prints, over several runs (medians): wall time for the 100, reports/s, and the
time of one report in each step. Target (issue #6): 100 reports in <= 60 s.

    .venv/bin/python benchmarks/bench_report.py [--reports 100] [--runs 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NOW = datetime(2026, 12, 2, 8, tzinfo=UTC)
MONTHS = ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
_state: dict[str, Any] = {}


def prepare(folder: Path) -> Path:
    from tmabot.cli import main
    from tmabot.demo import TOKEN_ENV, demo_config
    from tmabot.emulators.jira import JiraEmulator
    from tmabot.emulators.sample import build_sample_agency

    agency = build_sample_agency(NOW)
    os.environ[TOKEN_ENV] = "bench-token"
    with JiraEmulator(agency.dataset, token="bench-token") as jira:
        cfg = folder / "tmabot.toml"
        text = demo_config(agency, jira.url).replace(
            'database_url = "sqlite:///tmabot.db"',
            f'database_url = "sqlite:///{folder / "tmabot.db"}"')
        cfg.write_text(text, encoding="utf-8")
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
    return cfg


def _init(cfg: str, whole_fonts: bool) -> None:
    from tmabot.config import load_config
    from tmabot.report import render
    from tmabot.store import Store

    if whole_fonts:  # what a machine without HarfBuzz-subset does
        render._fast_subsetting = lambda: False  # type: ignore[assignment]

    settings = load_config(Path(cfg))
    _state["settings"] = settings
    _state["store"] = Store(settings.agency.database_url, migrate=False)


def one_report(job: tuple[int, str, str]) -> dict[str, float]:
    from tmabot.months import Month
    from tmabot.report.assemble import assemble
    from tmabot.report.charts import all_charts
    from tmabot.report.i18n import text_for
    from tmabot.report.render import render

    index, month, out = job
    settings, store = _state["settings"], _state["store"]
    client = settings.clients[index % len(settings.clients)]
    t0 = time.perf_counter()
    data = assemble(store, settings, client, Month.parse(month), at=NOW)
    t1 = time.perf_counter()
    charts = all_charts(data, text_for(data["locale"]))
    t2 = time.perf_counter()
    rendered = render(data, settings, ("html", "pdf"), charts=charts)
    t3 = time.perf_counter()
    assert rendered.html is not None and rendered.pdf is not None
    base = Path(out) / f"{index:03d}-{client.id}-{month}"
    base.with_suffix(".html").write_text(rendered.html, encoding="utf-8")
    base.with_suffix(".pdf").write_bytes(rendered.pdf)
    return {"assemble": t1 - t0, "charts": t2 - t1, "render": t3 - t2,
            "pdf_kb": len(rendered.pdf) / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--whole-fonts", action="store_true",
                    help="embed whole fonts, as without HarfBuzz-subset")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = prepare(Path(tmp))
        print(f"{args.reports} reports (HTML + PDF + 4 charts), {args.workers} worker "
              "processes")
        walls: list[float] = []
        steps: list[dict[str, float]] = []
        for run in range(args.runs):
            out = Path(tmp) / f"run{run}"
            out.mkdir()
            jobs = [(i, MONTHS[i % len(MONTHS)], str(out)) for i in range(args.reports)]
            began = time.perf_counter()
            with ProcessPoolExecutor(args.workers, initializer=_init,
                                     initargs=(str(cfg), args.whole_fonts)) as pool:
                results = list(pool.map(one_report, jobs))
            wall = time.perf_counter() - began
            walls.append(wall)
            steps.extend(results)
            print(f"  run {run + 1}: {wall:.1f} s, {args.reports / wall:.2f} reports/s")
    wall = statistics.median(walls)
    med = {k: statistics.median(r[k] for r in steps) for k in steps[0]}
    print()
    print(f"per report (median): assemble {med['assemble']:.2f} s, charts "
          f"{med['charts']:.2f} s, HTML + PDF {med['render']:.2f} s, PDF {med['pdf_kb']:.0f} KB")
    ok = wall <= 60 * args.reports / 100
    print(f"{'100 reports, wall time (median s)':<48}{wall * 100 / args.reports:>8.1f}  "
          f"target <= 60   {'OK' if ok else 'MISSED'}")
    print(f"{'reports/s (median)':<48}{args.reports / wall:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
