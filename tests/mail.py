"""A real SMTP server for the email tests (aiosmtpd on loopback): what it received, who
logged in, whether the message came over TLS; and the `[email]` section pointing at it."""

from __future__ import annotations

import socket
from typing import Any


class Inbox:
    """aiosmtpd handler (and authenticator, when `password` is given)."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.messages: list[tuple[list[str], bytes]] = []  # (recipients, raw message)
        self.logins: list[tuple[bytes, bytes]] = []
        self.secure: list[bool] = []  # per message: did it come over TLS?

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        self.secure.append(server.transport.get_extra_info("ssl_object") is not None)
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        self.logins.append((auth_data.login, auth_data.password))
        ok = self.password is not None and auth_data.password == self.password.encode()
        return AuthResult(success=ok, handled=False)  # False: the server answers 535


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def email_toml(port: int, sender: str = "tma@agence.fr", *, security: str = "none",
               login: bool = False) -> str:
    """An `[email]` section for the server on `port` (login through TEST_SMTP_USER and
    TEST_SMTP_PASSWORD when `login`)."""
    creds = ('username_env = "TEST_SMTP_USER"\npassword_env = "TEST_SMTP_PASSWORD"\n'
             if login else "")
    return (f'\n[email]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\n'
            f'{creds}from = "{sender}"\ntimeout_seconds = 5\n')
