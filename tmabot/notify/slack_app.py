"""The Slack app (Bolt): the `/tma` command and the nudge buttons.

`/tma help`, `/tma status <client>`, `/tma tickets <client> [at-risk]`. In a channel mapped
to a client (its `slack_channel`), only that client's data is ever shown: asking for
another one gets a refusal with no data. Replies are ephemeral. `ack()` comes first; the
figures are computed after it.

Served over HTTP at `/slack/events` by waitress (a production WSGI server) — Bolt checks
the request signature and refuses stale or forged ones with 401 — or in Socket Mode when
`[slack] app_token_env` is set.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from tmabot.notify.slack import context, escape, section
from tmabot.report.i18n import text_for

log = logging.getLogger("tmabot.slack.app")
HELP_FR = ("*Commandes /tma*\n• `/tma status &lt;client&gt;` : tickets ouverts, SLA et forfait\n"
           "• `/tma tickets &lt;client&gt; [at-risk]` : les tickets ouverts (ou à risque)\n"
           "• `/tma help` : cette aide")
HELP_EN = ("*/tma commands*\n• `/tma status &lt;client&gt;`: open tickets, SLA and plan\n"
           "• `/tma tickets &lt;client&gt; [at-risk]`: open (or at-risk) tickets\n"
           "• `/tma help`: this help")


def create_app(settings: Any, store_factory: Callable[[], Any], *, client: WebClient,
               signing_secret: str, now: Callable[[], datetime] | None = None) -> App:
    clock = now or (lambda: datetime.now(UTC))
    fr = settings.agency.locale == "fr"
    app = App(client=client, signing_secret=signing_secret,
              token_verification_enabled=True)
    by_channel = {c.slack_channel: c for c in settings.clients if c.slack_channel}
    by_id = {c.id: c for c in settings.clients}

    def answer(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return {"response_type": "ephemeral", "text": text, "blocks": blocks or [section(text)]}

    def resolve(channel_id: str, wanted: str | None) -> tuple[Any | None, str | None]:
        mapped = by_channel.get(channel_id)
        if wanted is None:
            if mapped is not None:
                return mapped, None
            return None, ("Précisez le client : `/tma status <client>`." if fr
                          else "Name the client: `/tma status <client>`.")
        if mapped is not None and wanted != mapped.id:
            # Refuse without saying whether that client exists: no data crosses channels.
            return None, (f"Ce canal est celui de {escape(mapped.name)} : je n'y montre que "
                          "ses tickets." if fr else
                          f"This channel belongs to {escape(mapped.name)}: I only show "
                          "its tickets here.")
        target = by_id.get(wanted)
        if target is None:
            known = ", ".join(f"`{c}`" for c in sorted(by_id)) if mapped is None else ""
            return None, ((f"Client inconnu : `{escape(wanted)}`." + (
                f" Clients : {known}." if known else "")) if fr else
                (f"Unknown client: `{escape(wanted)}`." + (f" Clients: {known}." if known
                                                           else "")))
        return target, None

    @app.command("/tma")
    def tma(ack: Callable[..., None], command: dict[str, Any],
            respond: Callable[..., Any]) -> None:
        words = (command.get("text") or "").split()
        verb = words[0].lower() if words else "help"
        if verb not in ("status", "tickets"):
            ack(answer(HELP_FR if fr else HELP_EN))
            return
        target, problem = resolve(command.get("channel_id", ""),
                                  words[1] if len(words) > 1 and words[1] != "at-risk"
                                  else None)
        if problem is not None:
            ack(answer(problem))
            return
        ack()  # within 3 s; the figures come after
        at_risk_only = "at-risk" in words[1:]
        store = store_factory()
        try:
            text, blocks = (status_reply(settings, store, target, clock(), fr)
                            if verb == "status" else
                            tickets_reply(settings, store, target, clock(), fr, at_risk_only))
        finally:
            store.close()
        respond(response_type="ephemeral", text=text, blocks=blocks)

    @app.action("tma_take")
    def take(ack: Callable[..., None], body: dict[str, Any], client: WebClient) -> None:
        ack()
        value = json.loads(body["actions"][0]["value"])
        user = body["user"]["id"]
        store = store_factory()
        try:
            store.take_nudge(value["c"], value["k"], value["i"], value["l"], user=user,
                             now=clock())
        finally:
            store.close()
        message = body.get("message") or {}
        blocks = [b for b in message.get("blocks") or [] if b.get("type") != "actions"]
        blocks.append(context(f":white_check_mark: Pris en charge par <@{user}>" if fr
                               else f":white_check_mark: Taken by <@{user}>"))
        client.chat_update(channel=body["channel"]["id"], ts=message.get("ts"),
                           text=message.get("text") or "", blocks=blocks)

    @app.action("tma_snooze")
    def snooze(ack: Callable[..., None], body: dict[str, Any], client: WebClient,
               respond: Callable[..., Any]) -> None:
        ack()
        message = body.get("message") or {}
        when = clock() + timedelta(hours=1)
        client.chat_scheduleMessage(
            channel=body["channel"]["id"], post_at=int(when.timestamp()),
            text=("Rappel : " if fr else "Reminder: ") + (message.get("text") or ""),
            blocks=message.get("blocks"))
        respond(response_type="ephemeral", replace_original=False,
                text="Je vous le rappelle dans 1 h." if fr else "I will remind you in 1 h.")

    @app.action("tma_open")
    def open_link(ack: Callable[..., None]) -> None:
        ack()  # a URL button: Slack opens the link, we only acknowledge

    return app


def status_reply(settings: Any, store: Any, client: Any, now: datetime, fr: bool,
                 ) -> tuple[str, list[dict[str, Any]]]:
    from zoneinfo import ZoneInfo

    from tmabot.months import Month
    from tmabot.tickets import client_consumption, evaluate, flagged, tickets_json

    t = text_for("fr" if fr else "en")
    ev = evaluate(store, settings, client, at=now)  # once, for tickets and the plan
    open_items = [x for x in tickets_json(ev, settings) if x["status_category"] != "done"]
    risky = sum(len(flagged(x, ("at_risk",))) for x in open_items)
    late = sum(len(flagged(x, ("breached",))) for x in open_items)
    month = Month.of(now.astimezone(ZoneInfo(settings.agency.timezone)))
    cons = client_consumption(store, settings, client, month, at=now, evaluated=ev)
    quota = "∞" if cons.tickets_included is None else str(cons.tickets_included)
    if fr:
        text = (f"*{escape(client.name)}* — {len(open_items)} ticket(s) ouvert(s), {risky} à "
                f"risque, {late} en retard. Ce mois-ci : {cons.tickets_used}/{quota} tickets "
                f"correctifs, {t.hours(cons.hours_used)}.")
    else:
        text = (f"*{escape(client.name)}* — {len(open_items)} open ticket(s), {risky} at risk, "
                f"{late} breached. This month: {cons.tickets_used}/{quota} corrective "
                f"tickets, {t.hours(cons.hours_used)}.")
    if cons.hours_balance is not None:
        text += (f" Solde : {t.hours(cons.hours_balance)}." if fr
                 else f" Balance: {t.hours(cons.hours_balance)}.")
    return text, [section(text)]


def tickets_reply(settings: Any, store: Any, client: Any, now: datetime, fr: bool,
                  at_risk_only: bool) -> tuple[str, list[dict[str, Any]]]:
    from tmabot.tickets import client_tickets, flagged

    t = text_for("fr" if fr else "en")
    lines = []
    for tk in client_tickets(store, settings, client, at=now):
        if tk["status_category"] == "done":
            continue
        names = flagged(tk)
        if at_risk_only and not names:
            continue
        mark = " :warning: " + ", ".join(t.indicator(k) for k in names) if names else ""
        lines.append(f"• *{escape(tk['key'])}* ({tk['priority']}) {escape(tk['title'][:90])} — "
                     f"{escape(tk['status'])}{mark}")
    head = (f"*{escape(client.name)}* — " + (f"{len(lines)} ticket(s) à risque" if at_risk_only
                                            else f"{len(lines)} ticket(s) ouvert(s)")) if fr \
        else (f"*{escape(client.name)}* — " + (f"{len(lines)} at-risk ticket(s)" if at_risk_only
                                              else f"{len(lines)} open ticket(s)"))
    blocks = [section(head)]
    # An ephemeral reply holds at most 50 blocks: 20 lines per section, 40 sections at most.
    for i in range(0, min(len(lines), 40 * 20), 20):
        blocks.append(section("\n".join(lines[i:i + 20])))
    if len(lines) > 800:
        blocks.append(context("…"))
    return head, blocks[:50]


def serve(settings: Any, store_factory: Callable[[], Any], *, host: str, port: int) -> None:
    """Run the app until stopped: HTTP (waitress) or Socket Mode."""
    from tmabot.notify.slack import web_client

    slack = settings.slack
    client = web_client(settings)
    if slack.app_token_env:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        app = create_app(settings, store_factory, client=client,
                         signing_secret=settings.secret(slack.signing_secret_env)
                         if slack.signing_secret_env else "socket-mode")
        SocketModeHandler(app, settings.secret(slack.app_token_env)).start()
        return
    import waitress
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    app = create_app(settings, store_factory, client=client,
                     signing_secret=settings.secret(slack.signing_secret_env))
    handler = SlackRequestHandler(app, path="/slack/events")  # other paths: 404
    log.info("serving /slack/events on http://%s:%d", host, port)
    waitress.serve(handler, host=host, port=port, threads=8, ident="tmabot")
