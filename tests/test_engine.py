"""Classification and SLA side by side on two threads give the same figures as inline."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tmabot import engine
from tmabot.calendar import BusinessCalendar
from tmabot.classify import BUILTIN_RULES, classify
from tmabot.sla import SlaPolicy, compute, default_targets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_sla  # noqa: E402


def test_threaded_batch_equals_sequential(monkeypatch: pytest.MonkeyPatch) -> None:
    cols, data, priority, _critique = bench_sla.dataset(3000, seed=5)
    cal = BusinessCalendar()
    targets, absolute = SlaPolicy(default_targets("critique")).arrays(priority, cal)
    monkeypatch.setattr(engine, "PARALLEL_FROM", 100)
    classes, sla = engine.run_batch(cols, BUILTIN_RULES, data, now=bench_sla.NOW,
                                    calendar=cal, targets=targets, absolute=absolute,
                                    run_hours_allowance=2.0)
    alone = classify(cols, BUILTIN_RULES, run_hours_allowance=2.0)
    ref = compute(data, now=bench_sla.NOW, calendar=BusinessCalendar(), targets=targets,
                  absolute=absolute)
    assert list(classes.category) == list(alone.category)
    assert list(classes.rule) == list(alone.rule)
    for name, ind in sla.indicators.items():
        other = ref.indicators[name]
        assert np.array_equal(ind.state, other.state)
        assert np.allclose(ind.elapsed, other.elapsed, equal_nan=True)
        assert np.allclose(ind.due, other.due, equal_nan=True)
    # Every state shows up somewhere in this data: the comparison is not vacuous.
    seen = set(np.concatenate([i.state for i in sla.indicators.values()]).tolist())
    assert {0, 1, 3, 5} <= seen
