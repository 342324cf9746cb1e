"""The monthly report: every format for every contract model, escaping, the JSON contract,
the PDF's sections in order, and the email through a real SMTP server on loopback."""

from __future__ import annotations

import email
import json
import shutil
import subprocess
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest

from tests.mail import Inbox, email_toml, free_port
from tmabot.cli import main
from tmabot.demo import TOKEN_ENV, demo_config
from tmabot.emulators.jira import JiraEmulator
from tmabot.emulators.sample import build_sample_agency
from tmabot.notify.email import build_message, header_safe

NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)
MONTH = "2026-11"
EVIL = "<script>alert(1)</script> & <!channel> =HYPERLINK(1)"
SECTIONS_FR = ["Résumé exécutif", "Tickets traités", "Consommation du forfait",
               "Mises à jour effectuées", "Disponibilité", "Alertes et recommandations",
               "Prévisions mois suivant"]
REPORT_KEYS = {"client", "client_name", "month", "summary", "tickets", "consumption",
               "updates", "uptime", "alerts", "next_month", "sla_compliance"}


@pytest.fixture(scope="module")
def agency_cfg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample agency (one client per contract model) synced into a store once."""
    folder = tmp_path_factory.mktemp("report")
    agency = build_sample_agency(NOW)
    issue = next(i for i in agency.dataset.issues if i.project_key == "LIB"
                 and i.created.month == 11)
    issue.summary = EVIL
    agency.dataset.touch()
    import os

    os.environ[TOKEN_ENV] = "report-token"
    with JiraEmulator(agency.dataset, token="report-token") as jira:
        cfg = folder / "tmabot.toml"
        cfg.write_text(demo_config(agency, jira.url), encoding="utf-8")
        assert main(["sync", "--config", str(cfg), "--quiet"]) == 0
    return cfg


def _report(cfg: Path, client: str, out: Path, *extra: str) -> int:
    return main(["report", "--client", client, "--month", MONTH, "--out", str(out),
                 "--config", str(cfg), "--at", "2026-11-30T20:00:00+01:00", *extra])


@pytest.mark.parametrize("client,model", [("boulangerie-lemoine", "forfait"),
                                          ("librairie-des-ecluses", "credit_temps"),
                                          ("azur-evasion", "sla")])
def test_every_format_for_every_model(agency_cfg: Path, tmp_path: Path, client: str,
                                      model: str) -> None:
    assert _report(agency_cfg, client, tmp_path, "--format", "html,pdf,md,json") == 0
    data = json.loads((tmp_path / f"{client}-{MONTH}.json").read_text(encoding="utf-8"))
    assert REPORT_KEYS <= set(data)
    assert data["consumption"]["model"] == model and data["month"] == MONTH
    assert 1 <= len(data["summary"]) <= 3
    assert all({"level", "text"} <= set(a) for a in data["alerts"])
    assert all({"title", "due"} <= set(n) for n in data["next_month"])
    assert set(data["sla_compliance"]) == {"response", "resolution", "delivery"}
    assert {"percent", "incidents"} <= set(data["uptime"])
    html = (tmp_path / f"{client}-{MONTH}.html").read_text(encoding="utf-8")
    for title in SECTIONS_FR:
        assert title in html
    assert html.count('<img class="chart" src="data:image/png;base64,') == 4
    assert (tmp_path / f"{client}-{MONTH}.pdf").read_bytes().startswith(b"%PDF")
    md = (tmp_path / f"{client}-{MONTH}.md").read_text(encoding="utf-8")
    assert md.startswith("# Rapport de maintenance") and "## Prévisions mois suivant" in md


def test_ticket_text_is_escaped_everywhere(agency_cfg: Path, tmp_path: Path) -> None:
    assert _report(agency_cfg, "librairie-des-ecluses", tmp_path, "--format",
                   "html,md,json") == 0
    html = (tmp_path / f"librairie-des-ecluses-{MONTH}.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;!channel&gt;" in html
    assert "<script>alert(1)" not in html and "<!channel>" not in html
    md = (tmp_path / f"librairie-des-ecluses-{MONTH}.md").read_text(encoding="utf-8")
    assert r"\<script\>alert\(1\)\</script\>" in md and "<script>" not in md
    data = json.loads((tmp_path / f"librairie-des-ecluses-{MONTH}.json").read_text())
    assert any(t["title"] == EVIL for t in data["tickets"])  # JSON keeps the data as is


def _pdf_text_and_pages(pdf: Path, tmp_path: Path) -> tuple[str, int]:
    """The PDF's text and page count: through poppler (pdftotext, pdftoppm) when the machine
    has it, else through pypdf (a dev dependency), so the check never silently disappears."""
    import unicodedata

    if shutil.which("pdftotext") and shutil.which("pdftoppm"):
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                              text=True, check=True).stdout
        subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")],
                       check=True)
        pages = len(list(tmp_path.glob("page-*.png")))
    else:
        from pypdf import PdfReader

        reader = PdfReader(str(pdf))
        text = "\n".join(page.extract_text() for page in reader.pages)
        pages = len(reader.pages)
    # The fonts set "ff" as one ligature glyph, which extractors may return as U+FB00 ("ﬀ"):
    # compare the text a reader sees, not the glyphs.
    return unicodedata.normalize("NFKC", text), pages


def test_pdf_has_the_seven_sections_in_order(agency_cfg: Path, tmp_path: Path) -> None:
    import re

    assert _report(agency_cfg, "azur-evasion", tmp_path, "--format", "pdf") == 0
    text, pages = _pdf_text_and_pages(tmp_path / f"azur-evasion-{MONTH}.pdf", tmp_path)
    positions = [text.find(title) for title in SECTIONS_FR]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), positions
    assert "Atelier des Pentes" in text and "novembre 2026" in text
    assert 2 <= pages <= 8
    assert re.search(rf"\b1 ?/ ?{pages}\b", text)  # "page / pages" in the footer
    # Only the font-subsetting notice is hushed: WeasyPrint's other warnings (a template's
    # broken CSS, an image that does not load) still reach the log.
    import logging

    weasy = logging.getLogger("weasyprint")
    assert weasy.isEnabledFor(logging.WARNING)
    notice = logging.LogRecord("weasyprint", logging.WARNING, "", 0,
                               'Using fontTools instead of HarfBuzz-Subset for font "X".',
                               None, None)
    broken = logging.LogRecord("weasyprint", logging.WARNING, "", 0,
                               "Failed to load image at 'logo.png'", None, None)
    assert not weasy.filter(notice) and weasy.filter(broken)


def test_english_locale_and_template_override(agency_cfg: Path, tmp_path: Path) -> None:
    custom = tmp_path / "templates"
    custom.mkdir()
    from report_templates import TEMPLATES_DIR

    md = (TEMPLATES_DIR / "report.md.j2").read_text(encoding="utf-8")
    (custom / "report.md.j2").write_text("<!-- agency copy -->\n" + md, encoding="utf-8")
    cfg = tmp_path / "en.toml"
    text = agency_cfg.read_text(encoding="utf-8").replace('locale = "fr"', 'locale = "en"')
    text = text.replace('database_url = "sqlite:///tmabot.db"',
                        f'database_url = "sqlite:///{agency_cfg.parent / "tmabot.db"}"')
    cfg.write_text(text + f'\n[report]\ntemplates_dir = "{custom}"\n', encoding="utf-8")
    assert _report(cfg, "boulangerie-lemoine", tmp_path, "--format", "md,html") == 0
    out = (tmp_path / f"boulangerie-lemoine-{MONTH}.md").read_text(encoding="utf-8")
    assert out.startswith("<!-- agency copy -->") and "## Executive summary" in out
    assert "November 2026" in out
    html = (tmp_path / f"boulangerie-lemoine-{MONTH}.html").read_text(encoding="utf-8")
    assert "Plan consumption" in html and "Consommation du forfait" not in html


def _with_email(cfg: Path, port: int, tmp_path: Path) -> Path:
    text = cfg.read_text(encoding="utf-8").replace(
        'database_url = "sqlite:///tmabot.db"',
        f'database_url = "sqlite:///{cfg.parent / "tmabot.db"}"')
    out = tmp_path / "mail.toml"
    out.write_text(text + email_toml(port, "TMA Atelier des Pentes <tma@atelier-des-pentes.fr>"),
                   encoding="utf-8")
    return out


def test_email_goes_once_through_a_real_smtp_server(agency_cfg: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        cfg = _with_email(agency_cfg, port, tmp_path)
        assert _report(cfg, "azur-evasion", tmp_path, "--format", "json", "--send") == 0
        assert len(inbox.messages) == 1
        assert _report(cfg, "azur-evasion", tmp_path, "--format", "json", "--send") == 0
        assert len(inbox.messages) == 1  # once per client-month
        assert "already emailed" in capsys.readouterr().out
        assert _report(cfg, "azur-evasion", tmp_path, "--format", "json", "--resend") == 0
        assert len(inbox.messages) == 2
    finally:
        controller.stop()
    rcpt, raw = inbox.messages[0]
    msg = email.message_from_bytes(raw, policy=policy.default)
    from email.utils import getaddresses

    from tmabot.config import load_config

    wanted = load_config(cfg).client("azur-evasion").report_recipients
    assert rcpt == [addr for _name, addr in getaddresses(list(wanted))] and rcpt
    assert msg["Subject"] == "Rapport de maintenance — Azur Évasion Réservations — novembre 2026"
    parts = list(msg.walk())
    types = [p.get_content_type() for p in parts]
    assert "text/plain" in types and "text/html" in types and "application/pdf" in types
    assert types.count("image/png") == 4
    html = next(p for p in parts if p.get_content_type() == "text/html").get_content()
    assert html.count('src="cid:') == 4 and "style=" in html  # CSS inlined
    assert "<script>" not in html
    pdf = next(p for p in parts if p.get_content_type() == "application/pdf")
    assert pdf.get_filename() == f"azur-evasion-{MONTH}.pdf"
    assert pdf.get_content().startswith(b"%PDF")


def test_smtp_down_exits_1_with_one_line_and_no_ledger_row(
        agency_cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tmabot.config import load_config
    from tmabot.store import Store

    cfg = _with_email(agency_cfg, free_port(), tmp_path)  # nothing listens there
    assert _report(cfg, "boulangerie-lemoine", tmp_path, "--format", "json", "--send") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "email via 127.0.0.1" in err
    settings = load_config(cfg)
    store = Store(settings.agency.database_url)
    assert store.delivery("boulangerie-lemoine", MONTH, "email") is None
    store.close()


def test_send_without_email_section_is_a_usage_error(agency_cfg: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert _report(agency_cfg, "azur-evasion", tmp_path, "--send") == 2
    assert "[email]" in capsys.readouterr().err


def test_no_header_injection_from_names_or_titles() -> None:
    msg = build_message(sender="TMA <tma@agence.fr>",
                        recipients=["Client\r\nBcc: evil@x.example <dsi@client.example>"],
                        subject="Rapport\r\nBcc: evil@x.example", text="t", html="<p>h</p>",
                        images={}, attachment=None)
    raw = msg.as_string()
    assert "\nBcc:" not in raw and "\rBcc:" not in raw
    assert header_safe("a\nb\tc\x00d") == "a b c d"


def test_the_report_does_not_accuse_itself_of_not_being_sent(agency_cfg: Path,
                                                              tmp_path: Path) -> None:
    """Made on 2 December for November: the audit's "report of last month sent?" is this
    very report, which counts as sent; October's (never sent here) is not asked."""
    assert main(["report", "--client", "boulangerie-lemoine", "--month", MONTH, "--out",
                 str(tmp_path), "--config", str(agency_cfg), "--at",
                 "2026-12-02T10:00:00+01:00", "--format", "json"]) == 0
    data = json.loads((tmp_path / f"boulangerie-lemoine-{MONTH}.json").read_text())
    texts = " ".join(a["text"] for a in data["alerts"])
    assert "non envoyé" not in texts and "Pas de rapport d'activité" not in texts


def test_an_unwritable_out_folder_is_one_line_exit_2(agency_cfg: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert _report(agency_cfg, "azur-evasion", blocker / "out", "--format", "md") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "Traceback" not in err[0]


def test_audit_months_are_the_agencys(agency_cfg: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """00:30 on 1 December in Paris is still 30 November in UTC: the report to check (E4)
    is November's, the agency's last month."""
    capsys.readouterr()
    assert main(["audit", "--client", "boulangerie-lemoine", "--format", "json", "--config",
                 str(agency_cfg), "--at", "2026-12-01T00:30:00+01:00"]) == 0
    e4 = next(p for p in json.loads(capsys.readouterr().out)["checklist"] if p["id"] == "E4")
    assert "2026-11" in e4["evidence"], e4
