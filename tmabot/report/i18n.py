"""The report's words and number formats, French first, English second (babel)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

from tmabot.months import Month

SECTIONS = {
    "fr": ["Résumé exécutif", "Tickets traités", "Consommation du forfait",
           "Mises à jour effectuées", "Disponibilité", "Alertes et recommandations",
           "Prévisions mois suivant"],
    "en": ["Executive summary", "Tickets handled", "Plan consumption", "Updates done",
           "Availability", "Alerts and recommendations", "Next month"],
}
STATUS = {"fr": {"ok": "OK", "warning": "à surveiller", "critical": "critique"},
          "en": {"ok": "OK", "warning": "to watch", "critical": "critical"}}
INDICATORS = {"fr": {"response": "prise en charge", "resolution": "résolution",
                     "delivery": "livraison"},
              "en": {"response": "response", "resolution": "resolution",
                     "delivery": "delivery"}}
STATES = {"fr": {"met": "respecté", "breached": "dépassé", "at_risk": "à risque",
                 "running": "en cours", "not_started": "non démarré", "none": "—"},
          "en": {"met": "met", "breached": "breached", "at_risk": "at risk",
                 "running": "running", "not_started": "not started", "none": "—"}}
MODELS = {"fr": {"forfait": "Forfait mensuel", "credit_temps": "Crédit d'heures",
                 "sla": "Contrat SLA"},
          "en": {"forfait": "Monthly plan", "credit_temps": "Prepaid hours",
                 "sla": "SLA contract"}}


class Text:
    """Formatters and phrases for one locale."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in SECTIONS else "fr"
        self.babel = "fr_FR" if self.locale == "fr" else "en_GB"
        self.sections = SECTIONS[self.locale]

    @property
    def fr(self) -> bool:
        return self.locale == "fr"

    # -- formats -----------------------------------------------------------------------
    def num(self, value: float, digits: int = 1) -> str:
        return str(format_decimal(round(float(value), digits), format=f"#,##0.{'0' * digits}"
                                  if digits else "#,##0", locale=self.babel))

    def hours(self, value: float) -> str:
        text = self.num(value, 2)
        return f"{text} h"

    def money(self, value: Decimal | str) -> str:
        return str(format_currency(Decimal(str(value)), "EUR", locale=self.babel))

    def percent(self, value: float | None, digits: int = 2) -> str:
        if value is None:
            return "—"
        text = self.num(value, digits)
        return f"{text} %" if self.fr else f"{text}%"

    def month_label(self, month: Month) -> str:
        return str(format_date(month.first_day(), "MMMM yyyy", locale=self.babel))

    def day(self, value: str | date | datetime | None) -> str:
        if value is None:
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        if isinstance(value, datetime):
            when = format_date(value.date(), "d MMM yyyy", locale=self.babel)
            return f"{when} {value:%H:%M}"
        return str(format_date(value, "d MMM yyyy", locale=self.babel))

    def moment(self, value: str | datetime) -> str:
        """A deadline in a message: « jeu. 26 nov. 11:37 » / "Thu 26 Nov 11:37" (in the
        offset the instant carries: the agency's)."""
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return f"{format_date(value.date(), 'EEE d MMM', locale=self.babel)} {value:%H:%M}"

    def indicator(self, name: str) -> str:
        return INDICATORS[self.locale][name]

    def state(self, name: str) -> str:
        return STATES[self.locale][name]

    def model(self, name: str) -> str:
        return MODELS[self.locale][name]

    def status(self, name: str) -> str:
        return STATUS[self.locale][name]

    # -- phrases -----------------------------------------------------------------------
    def breach(self, b: dict[str, Any]) -> str:
        if self.fr:
            return (f"{b['key']} ({b['priority']}) : délai de {self.indicator(b['indicator'])} "
                    f"dépassé ({self.num(b['elapsed_hours'])} h pour un objectif de "
                    f"{self.num(b['target_hours'])} h).")
        return (f"{b['key']} ({b['priority']}): {self.indicator(b['indicator'])} target missed "
                f"({self.num(b['elapsed_hours'])} h for a {self.num(b['target_hours'])} h "
                "target).")

    def open_risk(self, x: dict[str, Any], name: str, ind: dict[str, Any]) -> str:
        due = self.day(ind["due_at"]) if ind["due_at"] else ("en pause" if self.fr
                                                             else "paused")
        if self.fr:
            return (f"{x['key']} ({x['priority']}) toujours ouvert : délai de "
                    f"{self.indicator(name)} {self.state(ind['state'])} (échéance {due}).")
        return (f"{x['key']} ({x['priority']}) still open: {self.indicator(name)} "
                f"{self.state(ind['state'])} (due {due}).")

    def over_quota(self, c: Any) -> str:
        n = len(c.details["over_quota_tickets"])
        if self.fr:
            return (f"{c.tickets_used} tickets correctifs pour {c.tickets_included} inclus : "
                    f"{n} ticket(s) au-delà du forfait, {self.hours(c.overage_hours)} à facturer "
                    f"({self.money(c.overage_amount)}).")
        return (f"{c.tickets_used} corrective tickets for {c.tickets_included} included: {n} "
                f"beyond the plan, {self.hours(c.overage_hours)} to invoice "
                f"({self.money(c.overage_amount)}).")

    def run_over(self, c: Any) -> str:
        over = c.details["run_overage_hours"]
        if self.fr:
            return (f"Heures Run : {self.hours(c.run_hours_used)} pour "
                    f"{self.hours(c.run_hours_included)} incluses ({self.hours(over)} en "
                    "dépassement).")
        return (f"Run hours: {self.hours(c.run_hours_used)} for "
                f"{self.hours(c.run_hours_included)} included ({self.hours(over)} over).")

    def low_balance(self, c: Any) -> str:
        proj = c.details.get("projection") or {}
        when = proj.get("runs_out")
        if self.fr:
            tail = f" ; au rythme actuel, épuisement en {when}" if when else ""
            return (f"Solde bas : {self.hours(c.hours_balance)} restantes{tail}. "
                    "Un rechargement est à prévoir.")
        tail = f"; at the current pace it runs out in {when}" if when else ""
        return f"Low balance: {self.hours(c.hours_balance)} left{tail}. Plan a top-up."

    def out_of_plan(self, c: Any) -> str:
        if self.fr:
            return (f"Crédit épuisé en cours de mois : {self.hours(c.overage_hours)} hors "
                    f"crédit à facturer ({self.money(c.overage_amount)}).")
        return (f"Credit ran out during the month: {self.hours(c.overage_hours)} out of plan "
                f"to invoice ({self.money(c.overage_amount)}).")

    def uptime_below(self, percent: float, target: float) -> str:
        if self.fr:
            return (f"Disponibilité de {self.percent(percent)} sous l'objectif de "
                    f"{self.percent(target, 1)}.")
        return f"Availability {self.percent(percent)} below the {self.percent(target, 1)} target."

    def credit_reason(self, note: dict[str, Any]) -> str:
        """Why a credit note is owed. The consumption's `reason` is French (the JSON
        contract's language); an English report says it from the note's figures."""
        if self.fr or note.get("kind") not in ("uptime", "resolution"):
            return str(note["reason"])
        if note["kind"] == "uptime":
            return (f"Availability {self.num(note['uptime_percent'], 2)} % < "
                    f"{self.num(note['below'], 2)} %: credit of {self.num(note['percent'])} % "
                    "of the monthly fee")
        return (f"{note['ticket']}: P0 resolved {self.num(note['late_hours'], 2)} h late "
                f"({note['started_hours']} started hour(s) × "
                f"{self.num(note['percent_per_hour'])} %, capped at "
                f"{self.num(note['max_percent'])} %)")

    def credit_note(self, note: dict[str, Any]) -> str:
        if self.fr:
            return f"Avoir : {self.money(note['amount'])} — {self.credit_reason(note)}"
        return f"Credit note: {self.money(note['amount'])} — {self.credit_reason(note)}"

    def to_quote(self, quotes: list[dict[str, Any]]) -> str:
        keys = ", ".join(q["key"] for q in quotes[:6]) + (" …" if len(quotes) > 6 else "")
        if self.fr:
            return (f"{len(quotes)} demande(s) hors périmètre à chiffrer (devis) : {keys}.")
        return f"{len(quotes)} out-of-scope request(s) to quote: {keys}."

    def unclassified(self, items: list[dict[str, Any]]) -> str:
        keys = ", ".join(q["key"] for q in items[:6]) + (" …" if len(items) > 6 else "")
        if self.fr:
            return f"{len(items)} ticket(s) en cours de qualification, non décomptés : {keys}."
        return f"{len(items)} ticket(s) being qualified, not counted: {keys}."

    def no_priority(self, keys: list[str]) -> str:
        shown = ", ".join(keys[:6]) + (" …" if len(keys) > 6 else "")
        if self.fr:
            return f"Priorité non renseignée (traitée en P3) : {shown}."
        return f"No priority set (handled as P3): {shown}."

    def preventive_slot(self, cadence: str) -> str:
        if self.fr:
            return ("Fenêtre de mises à jour préventives (cadence "
                    f"{'mensuelle' if cadence == 'monthly' else 'trimestrielle'})")
        return f"Preventive update window ({cadence} cadence)"

    def security_slot(self, cadence: str) -> str:
        if self.fr:
            return ("Revue des correctifs de sécurité "
                    f"({'continue' if cadence == 'continuous' else 'mensuelle'})")
        return f"Security patch review ({cadence})"

    def status_line(self, status: str, handled: int, resolved: int, hours: float) -> str:
        if self.fr:
            return (f"Statut du mois : {self.status(status)} — {handled} ticket(s) traité(s), "
                    f"{resolved} résolu(s), {self.hours(hours)} d'intervention.")
        return (f"Status: {self.status(status)} — {handled} ticket(s) handled, {resolved} "
                f"resolved, {self.hours(hours)} of work.")

    def uptime_short(self, percent: float) -> str:
        return (f"Disponibilité {self.percent(percent)}" if self.fr
                else f"Availability {self.percent(percent)}")

    def updates_short(self, updates: list[dict[str, Any]]) -> str:
        named = list(dict.fromkeys(
            f"{u['version']['component']} {u['version']['from']} → {u['version']['to']}"
            for u in updates if u.get("version")))[:2]
        extra = f" ({', '.join(named)})" if named else ""
        if self.fr:
            return f"{len(updates)} mise(s) à jour effectuée(s){extra}"
        return f"{len(updates)} update(s) done{extra}"

    def consumption_line(self, c: Any) -> str:
        if c.model == "credit_temps":
            if self.fr:
                return (f"Crédit d'heures : {self.hours(c.hours_used)} consommées, solde de "
                        f"{self.hours(c.hours_balance or 0)} au 1er du mois suivant.")
            return (f"Prepaid hours: {self.hours(c.hours_used)} used, "
                    f"{self.hours(c.hours_balance or 0)} left for next month.")
        quota = ("illimité" if self.fr else "unlimited") if c.tickets_included is None \
            else str(c.tickets_included)
        over = (f" ; {self.hours(c.overage_hours)} hors forfait" if self.fr
                else f"; {self.hours(c.overage_hours)} beyond the plan") \
            if c.overage_hours else (" ; aucun dépassement" if self.fr else "; no overage")
        notes = ""
        if c.credit_notes:
            total = sum((Decimal(str(n["amount"])) for n in c.credit_notes), Decimal(0))
            notes = (f" ; avoir de {self.money(total)}" if self.fr
                     else f"; credit note of {self.money(total)}")
        if self.fr:
            return f"{self.model(c.model)} : {c.tickets_used} ticket(s) correctif(s) sur " \
                   f"{quota}{over}{notes}."
        return f"{self.model(c.model)}: {c.tickets_used} corrective ticket(s) of " \
               f"{quota}{over}{notes}."


def text_for(locale: str) -> Text:
    return Text(locale)
