"""The monthly client report: assemble (facts) → charts → render (HTML, PDF, Markdown, JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tmabot.months import Month

FORMATS = ("html", "pdf", "md", "json")


@dataclass
class SendOutcome:
    sent: bool
    message: str


def build(store: Any, settings: Any, client: Any, month: Month, *,
          at: datetime | None = None) -> dict[str, Any]:
    """The report's data for a client-month (uptime fetched from the client's source)."""
    from connectors.uptime import uptime_for
    from tmabot.report.assemble import assemble

    tz = ZoneInfo(settings.agency.timezone)
    start, end = month.bounds(tz)
    uptime = uptime_for(settings, client, start, end) if client.uptime else None
    return assemble(store, settings, client, month, at=at, uptime=uptime)


def write(data: dict[str, Any], settings: Any, formats: tuple[str, ...], out: Path) -> list[Path]:
    """`{client}-{month}.{ext}` files in `out`, for the asked formats."""
    from tmabot.report.render import render

    out.mkdir(parents=True, exist_ok=True)
    rendered = render(data, settings, formats)
    written = []
    for fmt in formats:
        path = out / f"{data['client']}-{data['month']}.{fmt}"
        value = getattr(rendered, fmt)
        if isinstance(value, bytes):
            path.write_bytes(value)
        else:
            path.write_text(value or "", encoding="utf-8")
        written.append(path)
    return written


def _already(client_id: str, period: str, row: dict[str, Any]) -> SendOutcome:
    if row.get("status") == "sent":
        return SendOutcome(False, f"{client_id} {period}: already emailed on "
                                  f"{row['sent_at']:%Y-%m-%d %H:%M} UTC (--resend to send "
                                  "it again)")
    return SendOutcome(False, f"{client_id} {period}: a previous send did not finish "
                              "(crash or another instance): check the mailbox, then "
                              "use --resend")


def email_message(data: dict[str, Any], settings: Any, client: Any, *, sender: str
                  ) -> tuple[Any, dict[str, bytes]]:
    """The monthly report as one email (text, HTML with the charts inline, the PDF attached)
    to the client's report recipients, and the charts (the Slack post shows the gauge)."""
    from tmabot.notify.email import build_message
    from tmabot.report.render import render

    rendered = render(data, settings, ("pdf",), for_email=True)
    assert rendered.pdf is not None
    return build_message(
        sender=sender, recipients=list(client.report_recipients), subject=rendered.subject,
        text=rendered.text, html=rendered.email_html,
        images=rendered.charts, attachment=(f"{data['client']}-{data['month']}.pdf",
                                            rendered.pdf)), rendered.charts


def send(store: Any, settings: Any, client: Any, data: dict[str, Any], *,
         resend: bool = False, now: datetime | None = None) -> SendOutcome:
    """Email the report to the client's recipients, once per client-month.

    The ledger row is claimed before the send and marked sent after it; a failed send
    releases the claim (nothing recorded). A claim left by a crash blocks automatic
    resends: better a report the PM re-sends by hand than one the client gets twice.
    """
    from tmabot.notify.email import send as smtp_send

    when = now or datetime.now(UTC)
    period = data["month"]
    row = store.delivery(client.id, period, "email")
    if row is not None and not resend:
        return _already(client.id, period, row)
    # Everything slow happens before the claim: between the claim and the record there is
    # only the SMTP conversation, so a crash can hardly fall in between.
    msg, charts = email_message(data, settings, client, sender=settings.email.from_address)
    if not store.claim_delivery(client.id, period, "email", now=when, force=resend):
        return _already(client.id, period, store.delivery(client.id, period, "email") or {})
    with store.sending(client.id, period, "email") as receipt:
        smtp_send(msg, settings)
        receipt.detail = f"{msg['Message-ID']} to {len(client.report_recipients)} recipient(s)"
    message = f"{client.id} {period}: emailed to {len(client.report_recipients)} recipient(s)"
    if settings.slack is not None and client.slack_channel:
        from tmabot.notify.slack import SlackError, post_report

        try:
            posted = post_report(settings, store, client, data, charts["gauge"],
                                 resend=resend)
        except SlackError as exc:  # the email went out; `tmabot run` retries the post
            posted = f"Slack post failed ({exc}): retried by the next `tmabot run`"
        if posted:
            message += "; " + posted
    return SendOutcome(True, message)
