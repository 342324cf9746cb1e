"""The report email over TLS: STARTTLS and implicit TLS (SMTPS) with login, against a real
SMTP server (aiosmtpd) on loopback holding a self-signed certificate that the client trusts
through SSL_CERT_FILE, and refuses without it."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.jira_data import write_config
from tests.mail import Inbox, email_toml, free_port
from tmabot.config import load_config
from tmabot.notify.email import EmailError, build_message, send

PASSWORD = "smtp-pass-7Qx!very-secret"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def _server(inbox: Inbox, cert: Path, key: Path, port: int, implicit: bool) -> Any:
    from aiosmtpd.controller import Controller

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if implicit:
        return Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=ctx,
                          authenticator=inbox.authenticate, auth_require_tls=False)
    return Controller(inbox, hostname="127.0.0.1", port=port, tls_context=ctx,
                      require_starttls=True, authenticator=inbox.authenticate,
                      auth_require_tls=True)


def _settings(tmp_path: Path, port: int, security: str) -> Any:
    cfg = write_config(tmp_path, "https://agency.atlassian.net")
    cfg.write_text(cfg.read_text(encoding="utf-8") + email_toml(
        port, "TMA Agence <tma@agence.fr>", security=security, login=True), encoding="utf-8")
    return load_config(cfg)


def _message() -> Any:
    return build_message(sender="TMA Agence <tma@agence.fr>", recipients=["dsi@acme.example"],
                         subject="Rapport de maintenance — ACME — novembre 2026",
                         text="Bonjour", html="<p>Bonjour</p>", images={},
                         attachment=("acme-2026-11.pdf", b"%PDF-1.7 test"))


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_JIRA_TOKEN", "unused")
    monkeypatch.setenv("TEST_SMTP_USER", "tma@agence.fr")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_login_delivers_once_encrypted(
        security: str, certificate: tuple[Path, Path], tmp_path: Path, secrets: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts our test CA only
    inbox, port = Inbox(PASSWORD), free_port()
    server = _server(inbox, cert, key, port, implicit=security == "ssl")
    server.start()
    try:
        send(_message(), _settings(tmp_path, port, security))
    finally:
        server.stop()
    assert inbox.logins == [(b"tma@agence.fr", PASSWORD.encode())]
    assert [r for r, _raw in inbox.messages] == [["dsi@acme.example"]]
    assert inbox.secure == [True]  # the message went over TLS


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_untrusted_certificate_is_one_line_without_the_password(
        security: str, certificate: tuple[Path, Path], tmp_path: Path, secrets: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-ca.pem"))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    inbox, port = Inbox(PASSWORD), free_port()
    server = _server(inbox, cert, key, port, implicit=security == "ssl")
    server.start()
    try:
        with pytest.raises(EmailError) as caught:
            send(_message(), _settings(tmp_path, port, security))
    finally:
        server.stop()
    text = str(caught.value)
    assert "\n" not in text and "CERTIFICATE_VERIFY_FAILED" in text
    assert PASSWORD not in text
    assert inbox.logins == [] and inbox.messages == []  # nothing sent in clear


def test_wrong_password_is_refused_and_said_in_one_line(
        certificate: tuple[Path, Path], tmp_path: Path, secrets: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "not-the-password")
    inbox, port = Inbox(PASSWORD), free_port()
    server = _server(inbox, cert, key, port, implicit=False)
    server.start()
    try:
        with pytest.raises(EmailError) as caught:
            send(_message(), _settings(tmp_path, port, "starttls"))
    finally:
        server.stop()
    assert "SMTPAuthenticationError" in str(caught.value)
    assert "not-the-password" not in str(caught.value)
    assert inbox.messages == []
