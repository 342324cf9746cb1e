"""The report email: multipart/alternative (text + HTML with inline charts) + the PDF.

Built with the standard library's EmailMessage; headers come only from sanitised one-line
strings (no CR/LF can reach a header, whatever a ticket title or a client name contains).
Sent with smtplib over none / STARTTLS / SSL, with optional login from env secrets.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, getaddresses, make_msgid
from typing import Any

from tmabot.logs import redact
from tmabot.notify import EmailError


def header_safe(value: str, limit: int = 200) -> str:
    """One line, no control characters: a header value nothing can inject into."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in str(value))
    return " ".join(cleaned.split())[:limit]


def _address(text: str) -> str:
    clean = header_safe(text)
    name, addr = getaddresses([clean])[0]
    if not addr or "@" not in addr:
        raise EmailError(f"not an email address: {clean!r}")
    return formataddr((header_safe(name), addr))


def build_message(*, sender: str, recipients: list[str], subject: str, text: str, html: str,
                  images: dict[str, bytes], attachment: tuple[str, bytes] | None,
                  domain: str = "tmabot") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = _address(sender)
    msg["To"] = ", ".join(_address(r) for r in recipients)
    msg["Subject"] = header_safe(subject)
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    html_part = msg.get_payload()[1]
    for name, png in images.items():
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{name}@tmabot>",
                              filename=f"{name}.png", disposition="inline")
    if attachment is not None:
        filename, data = attachment
        msg.add_attachment(data, maintype="application", subtype="pdf",
                           filename=header_safe(filename))
    return msg


def send(msg: EmailMessage, settings: Any) -> None:
    """Deliver through the `[email]` SMTP server; raise EmailError on any failure."""
    mail = settings.email
    user = settings.secret(mail.username_env) if mail.username_env else None
    password = settings.secret(mail.password_env) if mail.password_env else None
    context = ssl.create_default_context()
    try:
        if mail.security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(mail.host, mail.port,
                                                    timeout=mail.timeout_seconds,
                                                    context=context)
        else:
            server = smtplib.SMTP(mail.host, mail.port, timeout=mail.timeout_seconds)
        with server:
            server.ehlo()
            if mail.security == "starttls":
                server.starttls(context=context)
                server.ehlo()
            if user is not None and password is not None:
                server.login(user, password)
            refused = server.send_message(msg)
            if refused:
                raise EmailError("recipients refused: " + ", ".join(sorted(refused)))
    except EmailError:
        raise
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        detail = redact(str(exc)) or type(exc).__name__
        raise EmailError(f"email via {mail.host}:{mail.port} failed: "
                         f"{type(exc).__name__}: {detail}".splitlines()[0]) from None
