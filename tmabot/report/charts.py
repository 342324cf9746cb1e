"""The report's four charts (matplotlib, Agg): PNG bytes at 2× for sharp rendering.

One palette, distinguishable in grayscale too (light-to-dark blues plus an orange whose
lightness differs from every blue), hatches where two series could be confused, and a
label on every bar.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tmabot.report.i18n import Text  # noqa: E402

BLUES = ["#0b2e4f", "#1f4e79", "#3c78b5", "#7ca7d6", "#bcd3ec"]
ACCENT = "#e07b00"  # overage / breaches: lighter than the dark blues, darker than the light
GREY = "#d9d9d9"
DPI = 200  # 2× a 100 dpi layout
plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 9,
                     "axes.spines.top": False, "axes.spines.right": False})


def _png(fig: Figure, *, left: float = 0.2, bottom: float = 0.2, top: float = 0.84) -> bytes:
    """Fixed margins instead of bbox_inches="tight" (which draws the figure twice) and light
    PNG compression: a report's four charts in a fraction of the time."""
    fig.subplots_adjust(left=left, right=0.97, top=top, bottom=bottom)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return buf.getvalue()


def gauge(used: float, included: float | None, *, title: str, unit: str, t: Text) -> bytes:
    """A horizontal bar: used vs included (overage in the accent colour, hatched)."""
    fig, ax = plt.subplots(figsize=(5.6, 1.0))
    cap = included if included else max(used, 1.0)
    inside = min(used, cap)
    over = max(0.0, used - cap) if included else 0.0
    ax.barh([0], [cap], color=GREY, height=0.55)
    ax.barh([0], [inside], color=BLUES[1], height=0.55)
    if over:
        ax.barh([0], [over], left=[cap], color=ACCENT, height=0.55, hatch="///",
                edgecolor="white")
    share = used / included * 100 if included else None
    label = f"{t.num(used, 1)} / {t.num(included, 1)} {unit}" if included else \
        f"{t.num(used, 1)} {unit}"
    if share is not None:
        label += f" ({t.percent(share, 0)})"
    ax.set_xlim(0, max(cap + over, 1) * 1.05)
    ax.set_ylim(-0.45, 0.45)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_title(f"{title} : {label}" if t.fr else f"{title}: {label}", loc="left",
                 fontsize=10, color=BLUES[0], fontweight="bold")
    return _png(fig, left=0.03, bottom=0.3, top=0.62)


def categories(counts: dict[str, int], *, title: str, t: Text) -> bytes:
    fig, ax = plt.subplots(figsize=(5.6, 0.45 * max(2, len(counts)) + 0.6))
    names = list(counts)[::-1]
    values = [counts[n] for n in names]
    colours = [BLUES[i % len(BLUES)] for i in range(len(names))][::-1]
    bars = ax.barh(names, values, color=colours, edgecolor=BLUES[0], linewidth=0.4)
    for bar, value in zip(bars, values, strict=True):
        ax.text(bar.get_width() + max(values or [1]) * 0.02, bar.get_y() + bar.get_height() / 2,
                str(value), va="center", fontsize=9)
    ax.set_xlim(0, max(values or [1]) * 1.18 + 0.5)
    ax.set_xticks([])
    ax.spines["bottom"].set_visible(False)
    ax.set_title(title, loc="left", fontsize=10, color=BLUES[0])
    return _png(fig, left=0.22, bottom=0.05, top=0.88)


def sla(compliance: dict[str, dict[str, Any]], *, title: str, t: Text) -> bytes:
    """Met vs breached per indicator (stacked, labelled)."""
    fig, ax = plt.subplots(figsize=(5.6, 1.9))
    names = ("response", "resolution", "delivery")
    met = [compliance.get(n, {}).get("met", 0) for n in names]
    breached = [compliance.get(n, {}).get("breached", 0) for n in names]
    labels = [t.indicator(n).capitalize() for n in names]
    ax.barh(labels, met, color=BLUES[2], label=t.state("met"))
    ax.barh(labels, breached, left=met, color=ACCENT, hatch="///", edgecolor="white",
            label=t.state("breached"))
    top = max([m + b for m, b in zip(met, breached, strict=True)] + [1])
    for i, (m, b) in enumerate(zip(met, breached, strict=True)):
        pct = compliance.get(names[i], {}).get("percent")
        text = f"{m} / {m + b}" + (f"  ({t.percent(pct, 0)})" if pct is not None else "  —")
        ax.text(m + b + top * 0.02, i, text, va="center", fontsize=9)
    ax.set_xlim(0, top * 1.45)
    ax.set_xticks([])
    ax.spines["bottom"].set_visible(False)
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=8,
              frameon=False)
    ax.set_title(title, loc="left", fontsize=10, color=BLUES[0])
    return _png(fig, left=0.2, bottom=0.3, top=0.85)


def trend(points: list[dict[str, Any]], *, title: str, t: Text, tickets_label: str,
          hours_label: str) -> bytes:
    """Tickets created (bars) and hours logged (line) over six months."""
    fig, ax = plt.subplots(figsize=(5.6, 2.1))
    months = [p["month"][2:] for p in points]
    counts = [p["tickets"] for p in points]
    hours = [p["hours"] for p in points]
    bars = ax.bar(months, counts, color=BLUES[4], edgecolor=BLUES[2], label=tickets_label)
    for bar, value in zip(bars, counts, strict=True):  # inside the bar, at its foot
        ax.text(bar.get_x() + bar.get_width() / 2, 0.4, str(value), ha="center",
                va="bottom", fontsize=8, color=BLUES[0], fontweight="bold")
    ax.set_ylim(0, max(counts + [1]) * 1.15)
    ax2 = ax.twinx()
    ax2.plot(months, hours, color=BLUES[0], marker="o", linewidth=2, label=hours_label)
    for x, y in zip(months, hours, strict=True):
        ax2.annotate(t.num(y, 1) + " h", (x, y), textcoords="offset points", xytext=(0, 7),
                     ha="center", fontsize=8, color=BLUES[0],
                     bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"})
    top = max(hours + [1])
    ax2.set_ylim(-top * 0.9, top * 1.3)  # the line rides above the bars
    ax2.set_yticks([])
    ax2.spines["top"].set_visible(False)
    ax2.spines["right"].set_visible(False)
    lines = [bars, ax2.get_lines()[0]]
    ax.legend(lines, [tickets_label, hours_label], loc="upper center",
              bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, frameon=False)
    ax.set_title(title, loc="left", fontsize=10, color=BLUES[0])
    return _png(fig, left=0.08, bottom=0.28, top=0.86)


def plan_gauge(data: dict[str, Any], t: Text) -> bytes:
    """The consumption gauge that fits the contract (also what the Slack report post shows)."""
    c = data["consumption"]
    if c["model"] == "credit_temps":
        balance_start = c.get("balance_start") or 0.0
        available = balance_start + (c.get("hours_purchased") or 0.0)
        g = gauge(c["hours_used"], available or None,
                  title="Crédit d'heures consommé" if t.fr else "Prepaid hours used",
                  unit="h", t=t)
    elif c["model"] == "forfait" and c["tickets_included"] is not None:
        g = gauge(float(c["tickets_used"]), float(c["tickets_included"]),
                  title="Tickets correctifs du forfait" if t.fr else "Corrective tickets",
                  unit="tickets", t=t)
    elif c["run_hours_included"]:
        g = gauge(c["run_hours_used"], c["run_hours_included"],
                  title="Heures Run incluses" if t.fr else "Run hours included", unit="h", t=t)
    else:
        g = gauge(c["hours_used"], None, title="Heures d'intervention" if t.fr
                  else "Hours of work", unit="h", t=t)
    return g


def all_charts(data: dict[str, Any], t: Text) -> dict[str, bytes]:
    return {
        "gauge": plan_gauge(data, t),
        "categories": categories(data["tickets_by_category"] or {"—": 0},
                                 title="Tickets par catégorie" if t.fr
                                 else "Tickets by category", t=t),
        "sla": sla(data["sla_compliance"], title="Respect des délais (SLA)" if t.fr
                   else "SLA compliance", t=t),
        "trend": trend(data["trend"], title="Tendance sur 6 mois" if t.fr
                       else "6-month trend", t=t,
                       tickets_label="Tickets créés" if t.fr else "Tickets created",
                       hours_label="Heures" if t.fr else "Hours"),
    }
