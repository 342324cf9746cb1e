"""The maintenance audit (DOMAIN.md §5–§6): 10 warning signals, the rule of three criticals,
the 28-point checklist with its evidence, and the 1-5-15 debt view. Pure: `audit()` works on
an `AuditInput`; `audit_client()` gathers one from the store and the config.

Evidence comes from tracker data wherever the guide allows it (E1–E4, E9, D5, A1, A2, C3,
B1); the other points are facts the agency declares in `[clients.facts]` with the date it
last verified them (`false` = known not in place, absent = unknown). A declared date goes
stale after 12 months (C3: 3 months): the point is then `due`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tmabot.config import is_agency_email
from tmabot.months import add_months

# id, label (French), priority, stale after (months) for declared facts
CHECKLIST: tuple[tuple[str, str, str, int], ...] = (
    ("A1", "Dépendances auditées régulièrement (npm audit, WPScan…)", "critical", 3),
    ("A2", "Mises à jour de sécurité appliquées sous 72 h", "critical", 12),
    ("A3", "Certificat SSL valide, renouvellement automatisé", "high", 12),
    ("A4", "Accès (admin, SSH, BDD) revus dans les 12 derniers mois", "critical", 12),
    ("A5", "Protection WAF ou CDN en place", "high", 12),
    ("B1", "Monitoring de disponibilité actif avec alertes", "critical", 12),
    ("B2", "Logs applicatifs et serveur accessibles et lus", "high", 12),
    ("B3", "Suivi des erreurs (Sentry ou équivalent)", "high", 12),
    ("B4", "Temps de chargement surveillé (Lighthouse, Core Web Vitals)", "medium", 12),
    ("B5", "Procédure d'urgence documentée", "critical", 12),
    ("C1", "Sauvegardes automatiques de la base", "critical", 12),
    ("C2", "Sauvegardes stockées hors site", "critical", 12),
    ("C3", "Restauration testée dans les 3 derniers mois", "critical", 3),
    ("C4", "Rétention des sauvegardes définie et respectée", "high", 12),
    ("D1", "Environnement de staging à jour", "critical", 12),
    ("D2", "Chaque mise à jour testée en staging avant la production", "critical", 12),
    ("D3", "CMS / framework sur une version supportée", "high", 12),
    ("D4", "Plugins / dépendances obsolètes identifiés", "high", 12),
    ("D5", "Calendrier de mises à jour préventives suivi", "medium", 12),
    ("E1", "Toutes les demandes passent par le ticketing", "high", 12),
    ("E2", "Matrice de priorités P0–P3 définie", "high", 12),
    ("E3", "SLA de prise en charge et de résolution au contrat", "high", 12),
    ("E4", "Rapport mensuel envoyé au client", "high", 12),
    ("E5", "Documentation technique à jour", "medium", 12),
    ("E6", "Client formé au canal de demande", "medium", 12),
    ("E7", "Accès critiques dans un gestionnaire de mots de passe partagé", "high", 12),
    ("E8", "Revue de maintenance avec le client au moins une fois par an", "medium", 12),
    ("E9", "Le contrat précise ce qui est hors périmètre", "high", 12),
)
STALE = {pid: months for pid, _label, _prio, months in CHECKLIST}
SIGNALS: tuple[tuple[str, str, str], ...] = (
    ("S1", "Tout passe par email", "high"),
    ("S2", "Aucun suivi de tickets", "high"),
    ("S3", "Pas d'environnement de staging", "critical"),
    ("S4", "Mises à jour jamais faites (> 6 mois)", "critical"),
    ("S5", "Aucune sauvegarde testée", "critical"),
    ("S6", "Pas de monitoring de disponibilité", "high"),
    ("S7", "Pas de rapport d'activité", "high"),
    ("S8", "Pas de SLA défini", "medium"),
    ("S9", "Pas de documentation", "medium"),
    ("S10", "Pas de procédure d'urgence", "high"),
)
CADENCE_MONTHS = {"essentiel": 6, "business": 3, "critique": 1, None: 3}
_RESTORE = re.compile(r"restaur|restore", re.IGNORECASE)
_AUDIT = re.compile(r"audit|wpscan|npm audit|composer audit|scan", re.IGNORECASE)


@dataclass(frozen=True)
class AuditTicket:
    key: str
    title: str
    category: str
    created_at: datetime
    resolved_at: datetime | None
    labels: tuple[str, ...] = ()
    reporter_email: str | None = None
    hours: float = 0.0
    status_category: str = "todo"


@dataclass
class AuditInput:
    client_id: str
    now: datetime  # in the agency's time zone: months and days are the agency's
    tickets: list[AuditTicket]
    facts: dict[str, date | bool]
    tier: str | None
    has_sla_terms: bool  # a tier or per-client [clients.sla] targets
    priorities_defined: bool
    uptime_source: str | None  # "uptimerobot" | "csv" | None
    reports_sent: list[str]  # months ("2026-10") emailed, from the ledger
    has_recipients: bool
    staging_used: bool  # a staging status appears in the history
    agency_domains: tuple[str, ...] = ()
    quote_tickets: int = 0
    out_of_scope_rules: bool = True  # the built-in hors-périmètre rules always apply


@dataclass
class Point:
    id: str
    label: str
    priority: str
    status: str  # ok | ko | due | unknown
    evidence: str
    due: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "priority": self.priority,
                "status": self.status, "evidence": self.evidence, "due": self.due}


def _is_restore_test(t: AuditTicket) -> bool:
    return bool(_RESTORE.search(t.title) or any(_RESTORE.search(x) for x in t.labels))


def _fact(inp: AuditInput, pid: str, stale_months: int) -> tuple[str, str, str | None]:
    value = inp.facts.get(pid)
    if value is None:
        return "unknown", "non déclaré dans [clients.facts]", None
    if value is False:
        return "ko", "déclaré absent (false)", None
    assert isinstance(value, date)
    limit = add_months(value, stale_months)
    if limit <= inp.now.date():
        return "due", f"vérifié le {value:%d/%m/%Y}, à revérifier depuis le {limit:%d/%m/%Y}", \
            limit.isoformat()
    return "ok", f"vérifié le {value:%d/%m/%Y} (valable jusqu'au {limit:%d/%m/%Y})", None


def _resolved_within(inp: AuditInput, days: int, pred: Any) -> list[AuditTicket]:
    since = inp.now - timedelta(days=days)
    return [t for t in inp.tickets if t.resolved_at and t.resolved_at >= since and pred(t)]


def checklist(inp: AuditInput) -> list[Point]:
    points: dict[str, tuple[str, str, str | None]] = {}
    # -- evidenced by data ----------------------------------------------------------------
    recent = [t for t in inp.tickets if t.created_at >= inp.now - timedelta(days=30)]
    points["E1"] = (("ok", f"{len(recent)} ticket(s) créés dans le tracker sur 30 jours", None)
                    if recent else ("ko", "aucun ticket sur les 30 derniers jours", None))
    points["E2"] = (("ok", "matrice P0–P3 configurée (correspondances des priorités)", None)
                    if inp.priorities_defined else ("ko", "aucune matrice de priorités", None))
    points["E3"] = (("ok", f"objectifs SLA du tier « {inp.tier} »" if inp.tier else
                     "objectifs SLA définis pour ce client", None) if inp.has_sla_terms
                    else ("ko", "ni tier ni objectifs SLA au contrat", None))
    last_month = add_months(inp.now.date().replace(day=1), -1)
    wanted = f"{last_month:%Y-%m}"
    if not inp.has_recipients:
        points["E4"] = ("ko", "aucun destinataire de rapport configuré", None)
    elif wanted in inp.reports_sent:
        points["E4"] = ("ok", f"rapport de {wanted} envoyé (registre d'envoi)", None)
    else:
        points["E4"] = ("due", f"rapport de {wanted} non envoyé", None)
    points["E9"] = (("ok", "règles hors périmètre actives"
                     + (f", {inp.quote_tickets} ticket(s) à chiffrer" if inp.quote_tickets
                        else ""), None) if inp.out_of_scope_rules
                    else ("ko", "aucune règle hors périmètre", None))
    cadence = CADENCE_MONTHS.get(inp.tier, 3)
    prev = _resolved_within(inp, 31 * cadence, lambda t: t.category == "preventif")
    points["D5"] = (("ok", f"{len(prev)} ticket(s) préventif(s) résolu(s) sur {cadence} mois "
                     f"(cadence du tier)", None) if prev else
                    ("ko", f"aucun ticket préventif résolu sur {cadence} mois", None))
    # A2 is about applying security fixes: audits (A1's evidence) are not fixes.
    sec = _resolved_within(inp, 92, lambda t: t.category == "securite"
                           and not _AUDIT.search(t.title))
    late = [t for t in sec if t.resolved_at and t.resolved_at - t.created_at > timedelta(hours=72)]
    if not sec:
        points["A2"] = ("unknown", "aucun ticket de sécurité résolu sur 3 mois", None)
    elif late:
        points["A2"] = ("ko", f"{len(late)} correctif(s) de sécurité au-delà de 72 h : "
                        + ", ".join(t.key for t in late[:5]), None)
    else:
        points["A2"] = ("ok", f"{len(sec)} correctif(s) de sécurité, tous sous 72 h", None)
    audits = _resolved_within(inp, 92, lambda t: t.category == "securite"
                              and bool(_AUDIT.search(t.title)))
    points["A1"] = (("ok", f"audit de dépendances résolu : {audits[-1].key}", None) if audits
                    else _fact(inp, "A1", STALE["A1"]) if "A1" in inp.facts
                    else ("ko", "aucun audit de dépendances résolu sur 3 mois", None))
    restores = _resolved_within(inp, 92, _is_restore_test)
    older = _resolved_within(inp, 3650, _is_restore_test)
    if restores:
        points["C3"] = ("ok", f"test de restauration résolu : {restores[-1].key}", None)
    elif "C3" in inp.facts:
        points["C3"] = _fact(inp, "C3", STALE["C3"])
    elif older:
        points["C3"] = ("due", f"dernier test de restauration : {older[-1].key}, il y a plus "
                        "de 3 mois", None)
    else:
        points["C3"] = ("unknown", "aucun test de restauration connu", None)
    points["B1"] = (("ok", f"source de disponibilité : {inp.uptime_source}", None)
                    if inp.uptime_source else ("ko", "aucune source de disponibilité", None))
    # -- declared facts -------------------------------------------------------------------
    out: list[Point] = []
    for pid, label, prio, stale in CHECKLIST:
        status, evidence, due = points.get(pid) or _fact(inp, pid, stale)
        if status in ("ko", "due", "unknown") and prio == "high" and due is None:
            due = (inp.now.date() + timedelta(days=30)).isoformat()  # cover within 30 days
        out.append(Point(pid, label, prio, status, evidence, due))
    return out


# What a client asks for (S1 looks at who filed these), as opposed to the agency's own work.
REQUEST_CATEGORIES = ("correctif", "evolutif_run", "hors_perimetre", "non_classe")
S1_MIN_REQUESTS = 3

# A checklist status in the French sentences of signal reasons.
STATUS_FR = {"ok": "ok", "ko": "ko", "due": "à revoir", "unknown": "inconnu"}


def signals(inp: AuditInput, points: dict[str, Point]) -> list[dict[str, Any]]:
    def row(sid: str, active: bool, reason: str) -> dict[str, Any]:
        label, level = next((lab, lev) for s, lab, lev in SIGNALS if s == sid)
        return {"id": sid, "label": label, "level": level, "active": active, "reason": reason}

    out = []
    if inp.agency_domains:
        # Client requests only: the agency files its own préventif, sécurité and
        # supervision work, which says nothing about how the client asks.
        recent = [t for t in inp.tickets if t.created_at >= inp.now - timedelta(days=90)
                  and t.category in REQUEST_CATEGORIES]
        by_agency = [t for t in recent if is_agency_email(t.reporter_email,
                                                          inp.agency_domains)]
        share = len(by_agency) / len(recent) if recent else 0.0
        if len(recent) < S1_MIN_REQUESTS:  # one ticket typed by the PM proves nothing
            out.append(row("S1", False, f"{len(recent)} demande(s) du client sur 90 jours : "
                           "trop peu pour juger"))
        else:
            out.append(row("S1", share > 0.5, f"{share:.0%} des demandes du client sur 90 "
                           f"jours ({len(recent)}) créées par l'agence (reçues par email et "
                           "ressaisies)"))
    else:
        out.append(row("S1", False, "domaines de l'agence non configurés ([sla] "
                       "agency_domains) : non évaluable"))
    recent60 = [t for t in inp.tickets if t.created_at >= inp.now - timedelta(days=60)]
    out.append(row("S2", not recent60, f"{len(recent60)} ticket(s) sur 60 jours"))
    d1 = points["D1"]
    no_staging = d1.status == "ko" or (d1.status == "unknown" and not inp.staging_used)
    out.append(row("S3", no_staging, "staging déclaré absent" if d1.status == "ko" else
                   "aucun passage par un statut de recette et D1 non déclaré" if no_staging
                   else "staging en place"))
    updates = _resolved_within(inp, 183, lambda t: t.category in ("preventif", "securite"))
    out.append(row("S4", not updates, f"{len(updates)} mise(s) à jour résolue(s) sur 6 mois"))
    c3 = points["C3"]
    out.append(row("S5", c3.status != "ok", f"C3 {STATUS_FR[c3.status]} : {c3.evidence}"))
    out.append(row("S6", not inp.uptime_source, points["B1"].evidence))
    out.append(row("S7", points["E4"].status != "ok", points["E4"].evidence))
    out.append(row("S8", points["E3"].status != "ok", points["E3"].evidence))
    e5 = points["E5"]
    out.append(row("S9", e5.status in ("ko", "unknown"),
                   f"E5 {STATUS_FR[e5.status]} : {e5.evidence}"))
    b5 = points["B5"]
    out.append(row("S10", b5.status in ("ko", "unknown"),
                   f"B5 {STATUS_FR[b5.status]} : {b5.evidence}"))
    return out


def debt(inp: AuditInput) -> dict[str, Any]:
    """Open tickets by age: < 6 months × 1, 6–24 months × 5, > 2 years × 15 (weighted by
    their hours, at least 1), and the weighted total at the end of the last 6 months."""
    def weighted(at: datetime) -> tuple[dict[str, dict[str, float]], float]:
        bands = {"lt_6m": {"tickets": 0, "weight": 0.0}, "6m_2y": {"tickets": 0, "weight": 0.0},
                 "gt_2y": {"tickets": 0, "weight": 0.0}}
        total = 0.0
        for t in inp.tickets:
            if t.created_at > at or (t.resolved_at is not None and t.resolved_at <= at):
                continue
            age = (at - t.created_at).days / 30.44
            band, factor = (("lt_6m", 1) if age < 6 else ("6m_2y", 5) if age < 24
                            else ("gt_2y", 15))
            w = factor * max(t.hours, 1.0)
            bands[band]["tickets"] += 1
            bands[band]["weight"] += w
            total += w
        return bands, round(total, 1)

    bands, total = weighted(inp.now)
    trend = []
    for back in range(5, 0, -1):
        at = datetime.combine(add_months(inp.now.date().replace(day=1), -back),
                              datetime.min.time(), inp.now.tzinfo)
        trend.append({"at": at.date().isoformat(), "weighted": weighted(at)[1]})
    trend.append({"at": inp.now.date().isoformat(), "weighted": total})
    return {"bands": bands, "weighted_total": total, "trend": trend}


def audit(inp: AuditInput) -> dict[str, Any]:
    points = checklist(inp)
    by_id = {p.id: p for p in points}
    sigs = signals(inp, by_id)
    active = {s["id"] for s in sigs if s["active"]}
    three = {"S3", "S4", "S5"} <= active
    verdict = "sufficient" if all(p.status == "ok" for p in points
                                  if p.priority == "critical") else "insufficient"
    return {"client": inp.client_id, "signals": sigs, "three_criticals": three,
            "checklist": [p.as_json() for p in points], "verdict": verdict,
            "debt": debt(inp), "as_of": inp.now.isoformat()}


def audit_client(store: Any, settings: Any, client: Any, *, now: datetime | None = None,
                 evaluated: Any = None, reporting: str | None = None) -> dict[str, Any]:
    """Gather the evidence for one client and audit it (reusing `evaluated`, the client's
    tickets already evaluated, when the caller has them). `reporting` is the month of the
    report being produced: it counts as sent (E4, S7), or that report would accuse itself."""
    from tmabot.tickets import evaluate

    when = now or (evaluated.now if evaluated is not None else datetime.now(UTC))
    ev = evaluated if evaluated is not None else evaluate(store, settings, client, at=when)
    tickets = []
    for i, r in enumerate(ev.rows):
        ident = (r["tracker"], r["issue_id"])
        tickets.append(AuditTicket(
            key=r["key"], title=r["title"], category=str(ev.classification.category[i]),
            created_at=r["created_at"], resolved_at=ev.resolved[i],
            labels=tuple(r["labels"] or ()), reporter_email=r.get("reporter_email"),
            hours=ev.spent.get(ident, 0) / 3600.0, status_category=r["status_category"]))
    sent = [row["period"] for row in store.deliveries_of(client.id, "email")
            if row["status"] == "sent"] + ([reporting] if reporting else [])
    quotes = int(sum(1 for s in ev.classification.scope if s == "quote_required"))
    inp = AuditInput(
        client_id=client.id, now=when.astimezone(ZoneInfo(settings.agency.timezone)),
        tickets=tickets, facts=dict(client.facts),
        tier=client.contract.tier, has_sla_terms=bool(client.contract.tier or client.sla),
        priorities_defined=bool(settings.priorities_for(client)),
        uptime_source=client.uptime.kind if client.uptime else None, reports_sent=sent,
        has_recipients=bool(client.report_recipients), staging_used=ev.staging_used,
        agency_domains=tuple(settings.sla.agency_domains), quote_tickets=quotes)
    return audit(inp)


def escalate(store: Any, settings: Any, client: Any, result: dict[str, Any], *,
             now: datetime | None = None) -> str | None:
    """Rule of three criticals: one "audit immédiat" alert to the PM channel, ever."""
    if not result["three_criticals"] or settings.slack is None:
        return None
    when = now or datetime.now(UTC)
    if not store.claim_delivery(client.id, "three-criticals", "escalation", now=when):
        return None
    from tmabot.notify.slack import Poster, escape, section, web_client

    with store.sending(client.id, "three-criticals", "escalation") as receipt:
        reasons = "\n".join(f"• {s['id']} {escape(s['label'])} — {escape(s['reason'])}"
                            for s in result["signals"] if s["id"] in ("S3", "S4", "S5"))
        text = f"Audit immédiat recommandé : {escape(client.name)} (S3 + S4 + S5)"
        Poster(web_client(settings)).post(settings.slack.pm_channel, text, [
            section(f":rotating_light: *Audit immédiat* — *{escape(client.name)}* cumule les "
                    f"trois signaux critiques : un incident majeur est probable.\n{reasons}")])
        receipt.detail = settings.slack.pm_channel
    return f"{client.id}: audit escalated to {settings.slack.pm_channel}"
