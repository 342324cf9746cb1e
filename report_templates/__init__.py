"""Jinja templates of the client reports; an agency can point `report.templates_dir` at copies."""

from __future__ import annotations

from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent
