"""Slack: overdue-SLA nudges (once per level), the PM digest, report posts (slack_sdk).

Every string that comes from a ticket is escaped for mrkdwn (`&`, `<`, `>`), so a title
`<!channel> urgent` or `<http://evil|click>` is shown as typed and never pings or links.
Titles never go inside link syntax: the ticket link is a button. Messages carry a `text`
fallback and at most 50 blocks (longer lists are split over several messages). The client
retries 429 (Retry-After) and 5xx.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from tmabot.calendar import BusinessCalendar
from tmabot.notify import SlackError

log = logging.getLogger("tmabot.slack")
MAX_BLOCKS = 50


def escape(text: Any) -> str:
    """mrkdwn-safe text: `&` first, then `<` and `>` (Slack's own rule)."""
    return (str(text if text is not None else "").replace("&", "&amp;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def web_client(settings: Any) -> WebClient:
    slack = settings.slack
    client = WebClient(token=settings.secret(slack.bot_token_env), base_url=str(slack.api_url),
                       timeout=int(slack.timeout_seconds))
    client.retry_handlers.extend([RateLimitErrorRetryHandler(max_retry_count=3),
                                  ServerErrorRetryHandler(max_retry_count=2),
                                  ConnectionErrorRetryHandler(max_retry_count=2)])
    return client


def chunks(blocks: Sequence[dict[str, Any]], size: int = MAX_BLOCKS) -> list[list[dict]]:
    return [list(blocks[i:i + size]) for i in range(0, len(blocks), size)] or [[]]


def section(text: str) -> dict[str, Any]:
    return SectionBlock(text=MarkdownTextObject(text=text[:3000])).to_dict()


def context(text: str) -> dict[str, Any]:
    return ContextBlock(elements=[MarkdownTextObject(text=text[:3000])]).to_dict()


def header(text: str) -> dict[str, Any]:
    return HeaderBlock(text=PlainTextObject(text=text[:150])).to_dict()


def button(action_id: str, label: str, *, value: str | None = None, url: str | None = None,
           style: str | None = None) -> ButtonElement:
    return ButtonElement(action_id=action_id, text=PlainTextObject(text=label), value=value,
                         url=url, style=style)


@dataclass
class Poster:
    """Posts through one WebClient; caches email → user id lookups (Tier 3 method)."""

    client: WebClient
    _users: dict[str, str | None] = field(default_factory=dict)

    def post(self, channel: str, text: str, blocks: Sequence[dict[str, Any]]) -> list[str]:
        """Post (split over several messages past 50 blocks); returns the message ts."""
        out = []
        parts = chunks(blocks)
        for n, part in enumerate(parts):
            suffix = f" ({n + 1}/{len(parts)})" if len(parts) > 1 else ""
            try:
                resp = self.client.chat_postMessage(channel=channel, text=text + suffix,
                                                    blocks=part or None)
            except SlackApiError as exc:
                raise SlackError(f"chat.postMessage to {channel}: "
                                 f"{exc.response.get('error', 'failed')}") from None
            except Exception as exc:  # noqa: BLE001 - connection lost after the retries
                raise SlackError(f"chat.postMessage to {channel}: {type(exc).__name__}"
                                 ) from None
            out.append(str(resp["ts"]))
        return out

    def user_id(self, email: str | None) -> str | None:
        if not email:
            return None
        key = email.lower()
        if key not in self._users:
            try:
                resp = self.client.users_lookupByEmail(email=key)
                self._users[key] = str(resp["user"]["id"])
            except SlackApiError as exc:
                error = exc.response.get("error")
                if error != "users_not_found":  # a bad token or scope is not "no such user"
                    raise SlackError(f"users.lookupByEmail: {error}") from None
                self._users[key] = None  # not in the workspace: no mention, no DM
        return self._users[key]

    def dm(self, user: str, text: str, blocks: Sequence[dict[str, Any]]) -> list[str]:
        try:
            channel = str(self.client.conversations_open(users=user)["channel"]["id"])
        except SlackApiError as exc:
            raise SlackError(f"conversations.open: {exc.response.get('error')}") from None
        return self.post(channel, text, blocks)


# -- nudges ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nudge:
    client_id: str
    client_name: str
    channel: str | None
    key: str
    title: str
    url: str
    priority: str
    indicator: str
    level: str  # at_risk | breached
    due_at: str | None
    target_hours: float
    elapsed_hours: float
    assignee_email: str | None
    absolute: bool  # 24/7 clock


def due_nudges(settings: Any, store: Any, now: datetime, *,
               client_ids: Sequence[str] | None = None) -> list[Nudge]:
    """Running indicators at risk or breached, for every client (or those asked)."""
    from tmabot.tickets import client_tickets, flagged

    out: list[Nudge] = []
    for client in settings.clients:
        if client_ids and client.id not in client_ids:
            continue
        for t in client_tickets(store, settings, client, at=now):
            if t["status_category"] == "done":
                continue
            for name in flagged(t):
                ind = t["sla"][name]
                out.append(Nudge(client.id, client.name, client.slack_channel, t["key"],
                                 t["title"], t["url"], t["priority"], name, ind["state"],
                                 ind["due_at"], float(ind["target_hours"] or 0),
                                 float(ind["elapsed_hours"]), t["assignee_email"],
                                 ind["clock"] == "24/7"))
    return out


def nudge_blocks(n: Nudge, locale: str, mention: str | None) -> tuple[str, list[dict]]:
    from tmabot.report.i18n import text_for

    t = text_for(locale)
    fr = t.fr
    ind = t.indicator(n.indicator)
    late = n.level == "breached"
    icon = ":rotating_light:" if late else ":warning:"
    state = ("En retard" if late else "À risque") if fr else ("Breached" if late else "At risk")
    hours = t.num(abs(n.target_hours - n.elapsed_hours))
    when = (f"en retard de {hours} h" if late else f"{hours} h restantes") if fr else \
        (f"{hours} h late" if late else f"{hours} h left")
    clock = "24/7" if n.absolute else ("heures ouvrées" if fr else "business hours")
    due = t.moment(n.due_at) if n.due_at else ""
    who = mention or (escape(n.assignee_email) if n.assignee_email else
                      ("non assigné" if fr else "unassigned"))
    title = escape(n.title)
    text = (f"{state} : {escape(n.key)} ({n.priority}) {ind} — {title}" if fr
            else f"{state}: {escape(n.key)} ({n.priority}) {ind} — {title}")
    lines = [f"{icon} *{state}* — *{escape(n.key)}* {title}",
             (f"Client : *{escape(n.client_name)}* · Priorité *{n.priority}* · Délai de "
              f"{ind} : {when} ({clock}{', échéance ' + due if due else ''})") if fr else
             (f"Client: *{escape(n.client_name)}* · Priority *{n.priority}* · {ind} target: "
              f"{when} ({clock}{', due ' + due if due else ''})"),
             (f"Assigné à : {who}" if fr else f"Assignee: {who}")]
    value = json.dumps({"c": n.client_id, "k": n.key, "i": n.indicator, "l": n.level})
    buttons = [button("tma_take", "Pris en charge" if fr else "On it", value=value,
                      style="primary"),
               button("tma_snooze", "Rappeler dans 1 h" if fr else "Remind me in 1 h",
                      value=value)]
    if n.url.startswith(("http://", "https://")):
        buttons.append(button("tma_open", "Ouvrir le ticket" if fr else "Open ticket",
                              url=n.url[:3000]))
    return text, [section("\n".join(lines)), ActionsBlock(elements=buttons).to_dict()]


@dataclass
class NudgeRun:
    posted: list[Nudge] = field(default_factory=list)
    already: int = 0
    waiting: list[Nudge] = field(default_factory=list)  # outside business hours
    failed: list[str] = field(default_factory=list)


def send_nudges(settings: Any, store: Any, *, now: datetime | None = None,
                dry_run: bool = False, poster: Poster | None = None,
                client_ids: Sequence[str] | None = None) -> NudgeRun:
    """Post what is due: each (ticket, indicator, level) at most once, ever."""
    when = now or datetime.now(UTC)
    cal = BusinessCalendar.from_settings(settings.calendar, settings.agency.timezone)
    open_hours = cal.is_open(when)
    run = NudgeRun()
    sent = {(r["client_id"], r["ticket_key"], r["indicator"], r["level"])
            for r in store.nudges_sent()}
    poster = poster or (None if dry_run else Poster(web_client(settings)))
    for n in due_nudges(settings, store, when, client_ids=client_ids):
        ident = (n.client_id, n.key, n.indicator, n.level)
        if ident in sent:
            run.already += 1
            continue
        if not open_hours and not (n.priority == "P0" and n.absolute):
            run.waiting.append(n)  # the next run inside business hours posts it
            continue
        if dry_run:
            run.posted.append(n)
            continue
        assert poster is not None
        if not store.claim_nudge(*ident, now=when):
            run.already += 1
            continue
        try:
            ts = _post_nudge(settings, poster, n)
        except Exception as exc:  # noqa: BLE001 - released: the next run posts it
            store.release_nudge(*ident)
            run.failed.append(f"{n.key} {n.indicator}: {exc}")
            continue
        store.mark_nudged(*ident, channel=n.channel, ts=ts)
        run.posted.append(n)
    return run


def _post_nudge(settings: Any, poster: Poster, n: Nudge) -> str | None:
    """Post a nudge to the client's channel, the assignee (DM) and, for a P0 breach, the PM
    channel. Once one of them has it, a later failure is only logged: raising would release
    the ledger claim and the next run would post again where it already went. Reaching
    nobody is an error (the claim is released, the next run tries again)."""
    locale = settings.agency.locale
    user = poster.user_id(n.assignee_email)
    text, blocks = nudge_blocks(n, locale, f"<@{user}>" if user else None)
    first: str | None = None
    delivered = False
    if n.channel:
        first = poster.post(n.channel, text, blocks)[0]
        delivered = True
    extra: list[tuple[str, Callable[[], Any]]] = []
    if user:
        extra.append(("DM to the assignee", lambda: poster.dm(user, text, blocks)))
    if n.priority == "P0" and n.level == "breached":
        escalation = [section((":sos: *Escalade P0* — " if locale == "fr"
                               else ":sos: *P0 escalation* — ") + f"{escape(n.client_name)}")]
        extra.append(("P0 escalation", lambda: poster.post(
            settings.slack.pm_channel,
            "Escalade P0 : " + text if locale == "fr" else "P0 escalation: " + text,
            escalation + blocks)))
    failures: list[str] = []
    for what, post in extra:
        try:
            post()
            delivered = True
        except SlackError as exc:
            failures.append(f"{what} failed: {exc}")
    if not delivered:
        raise SlackError(failures[0] if failures else
                         f"{n.client_id} has no slack_channel and {n.key} no reachable "
                         "assignee: nowhere to post")
    for failure in failures:
        log.warning("%s: %s", n.key, failure)
    return first


# -- the PM digest ---------------------------------------------------------------------------


def digest_blocks(settings: Any, store: Any, now: datetime, *, weekly: bool = False,
                  ) -> tuple[str, list[dict[str, Any]]]:
    from tmabot.audit import audit_client
    from tmabot.months import Month
    from tmabot.report.i18n import text_for
    from tmabot.tickets import client_consumption, evaluate, flagged, tickets_json

    t = text_for(settings.agency.locale)
    fr = t.fr
    tz = ZoneInfo(settings.agency.timezone)
    local = now.astimezone(tz)
    title = (("Digest TMA hebdomadaire" if weekly else "Digest TMA") if fr
             else ("Weekly TMA digest" if weekly else "TMA digest")) + f" — {local:%d/%m/%Y}"
    blocks: list[dict[str, Any]] = [header(title)]
    week_start = now - timedelta(days=7)
    for client in settings.clients:
        ev = evaluate(store, settings, client, at=now)  # once: tickets, plan and audit
        items = tickets_json(ev, settings)
        open_items = [x for x in items if x["status_category"] != "done"]
        by_p = Counter(x["priority"] for x in open_items)
        risky = [(x, k) for x in open_items for k in flagged(x, ("at_risk",))]
        late = [(x, k) for x in open_items for k in flagged(x, ("breached",))]
        cons = client_consumption(store, settings, client, Month.of(local), at=now,
                                  evaluated=ev)
        quotes = len(cons.details.get("tickets_to_quote") or [])
        unclassified = sum(1 for x in items if x["category"] == "non_classe")
        prio = " · ".join(f"{p} {by_p.get(p, 0)}" for p in ("P0", "P1", "P2", "P3"))
        if cons.model == "credit_temps":
            plan = f"{'solde' if fr else 'balance'} {t.hours(cons.hours_balance or 0)}"
        elif cons.model == "forfait":
            quota = "∞" if cons.tickets_included is None else cons.tickets_included
            plan = (f"{cons.tickets_used}/{quota} tickets, Run {t.hours(cons.run_hours_used)}"
                    f" / {t.hours(cons.run_hours_included)}")
        else:
            n = cons.tickets_used
            plan = (f"{n} correctif{'s' if n > 1 else ''}" if fr
                    else f"{n} corrective ticket{'s' if n != 1 else ''}")
        lines = [f"*{escape(client.name)}* — " + (
            f"{len(open_items)} ouvert(s) ({prio}) · {len(risky)} à risque · "
            f"{len(late)} en retard" if fr else
            f"{len(open_items)} open ({prio}) · {len(risky)} at risk · {len(late)} breached"),
            (f"Forfait : {plan} · {quotes} à chiffrer · {unclassified} non classé(s)" if fr
             else f"Plan: {plan} · {quotes} to quote · {unclassified} unclassified")]
        if weekly:
            created = sum(1 for x in items
                          if datetime.fromisoformat(x["created_at"]) >= week_start)
            resolved = sum(1 for x in items if x["resolved_at"]
                           and datetime.fromisoformat(x["resolved_at"]) >= week_start)
            lines.append(f"Cette semaine : {created} créé(s), {resolved} résolu(s)" if fr
                         else f"This week: {created} created, {resolved} resolved")
        audit = audit_client(store, settings, client, now=now, evaluated=ev)
        active = [s["id"] for s in audit["signals"] if s["active"]]
        if active:
            lines.append((f"Audit : signaux actifs {', '.join(active)}" if fr else
                          f"Audit: active signals {', '.join(active)}")
                         + (" — *audit immédiat*" if audit["three_criticals"] else ""))
        for x, k in (late + risky)[:5]:
            lines.append(f"• {escape(x['key'])} ({x['priority']}) "
                         f"{t.indicator(k)} — {escape(x['title'][:80])}")
        blocks.append(section("\n".join(lines)))
        blocks.append(DividerBlock().to_dict())
    return title, blocks


def post_digest(settings: Any, store: Any, *, now: datetime | None = None,
                weekly: bool = False, poster: Poster | None = None) -> str:
    when = now or datetime.now(UTC)
    tz = ZoneInfo(settings.agency.timezone)
    local = when.astimezone(tz)
    period = f"{local:%G-W%V}" if weekly else f"{local:%Y-%m-%d}"
    channel = "digest-weekly" if weekly else "digest"
    if not store.claim_delivery("*", period, channel, now=when):
        return f"{channel} {period}: already posted"
    with store.sending("*", period, channel) as receipt:
        text, blocks = digest_blocks(settings, store, when, weekly=weekly)
        (poster or Poster(web_client(settings))).post(settings.slack.pm_channel, text, blocks)
        receipt.detail = settings.slack.pm_channel
    return f"{channel} {period}: posted to {settings.slack.pm_channel}"


# -- report posts ----------------------------------------------------------------------------


def post_report(settings: Any, store: Any, client: Any, data: dict[str, Any], gauge: bytes, *,
                poster: Poster | None = None, resend: bool = False) -> str | None:
    """The monthly report's summary and consumption gauge in the client's channel, once."""
    if settings.slack is None or not client.slack_channel:
        return None
    when = datetime.now(UTC)
    if not store.claim_delivery(client.id, data["month"], "slack", now=when, force=resend):
        return f"{client.id} {data['month']}: already posted to Slack"
    fr = data["locale"] == "fr"
    summary = "\n".join(f"• {escape(line)}" for line in data["summary"])
    comment = (f"*Rapport de maintenance — {escape(data['client_name'])} — "
               f"{escape(data['month_label'])}* (envoyé au client)\n{summary}" if fr else
               f"*Maintenance report — {escape(data['client_name'])} — "
               f"{escape(data['month_label'])}* (emailed to the client)\n{summary}")
    try:
        with store.sending(client.id, data["month"], "slack") as receipt:
            client_ = (poster.client if poster else web_client(settings))
            client_.files_upload_v2(channel=client.slack_channel, content=gauge,
                                    filename=f"consommation-{client.id}-{data['month']}.png",
                                    title="Consommation du forfait" if fr
                                    else "Plan consumption", initial_comment=comment)
            receipt.detail = client.slack_channel
    except Exception as exc:  # noqa: BLE001 - released: the next run posts it
        detail = exc.response.get("error", "failed") if isinstance(exc, SlackApiError) \
            else type(exc).__name__
        raise SlackError(f"files_upload_v2 to {client.slack_channel}: {detail}") from None
    return f"{client.id} {data['month']}: posted to Slack {client.slack_channel}"
