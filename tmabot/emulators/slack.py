"""A Slack Web API emulator: real HTTP on loopback for `slack_sdk.WebClient(base_url=...)`.

Methods: auth.test, chat.postMessage / update / postEphemeral / scheduleMessage,
conversations.open, users.lookupByEmail, files.getUploadURLExternal (+ the upload URL it
hands out, on itself) and files.completeUploadExternal. Answers as Slack does: HTTP 200
with `{"ok": false, "error": "..."}` for API errors (invalid_auth, channel_not_found,
users_not_found, invalid_blocks, msg_too_long, no_text, message_not_found); 429 with
Retry-After through fault injection. Every call is logged with its decoded payload; the
messages of each channel are kept (and can be written out for a human to read).
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from tmabot.emulators.http import EmulatorServer, Request, Response

MAX_BLOCKS = 50
MAX_TEXT = 40_000


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    kind: str = "message"  # message | ephemeral | scheduled | file
    user: str | None = None
    updated: int = 0
    thread_ts: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)


class SlackEmulator(EmulatorServer):
    pause_gc_in_handlers = False

    def __init__(self, *, token: str = "xoxb-test", channels: set[str] | None = None,
                 users: dict[str, str] | None = None, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self._token = token
        self.channels: set[str] = set(channels or set())
        self.users = dict(users or {})  # email -> user id
        self.messages: list[Posted] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []  # (method, payload)
        self.uploads: dict[str, bytes] = {}
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._lock2 = threading.Lock()
        self.add_route("POST", r"/api/([a-zA-Z.]+)", self._api)
        self.add_route("GET", r"/api/([a-zA-Z.]+)", self._api)
        self.add_route("POST", r"/upload/(F\w+)", self._upload)
        self.add_route("POST", r"/response/(\w+)", self._response_url)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/response/{name}"

    # -- helpers -------------------------------------------------------------------------
    def in_channel(self, channel: str) -> list[Posted]:
        return [m for m in self.messages if m.channel == channel]

    def method_calls(self, method: str) -> list[dict[str, Any]]:
        return [p for m, p in self.calls if m == method]

    def write_transcript(self, folder: Path) -> list[Path]:
        """Each channel's messages as a text file and an HTML preview, for people."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        by_channel: dict[str, list[Posted]] = {}
        for m in self.messages:
            by_channel.setdefault(m.channel, []).append(m)
        for channel, items in sorted(by_channel.items()):
            lines, cards = [], []
            for m in items:
                lines.append(f"[{m.ts}] ({m.kind}{', modifié' if m.updated else ''}) {m.text}")
                for b in m.blocks:
                    lines.append("    " + _block_text(b))
                cards.append("<div class='msg'><div class='meta'>" + escape(m.ts) + " · "
                             + escape(m.kind) + "</div>" + "".join(
                                 f"<div class='block'>{escape(_block_text(b))}</div>"
                                 for b in m.blocks or [{"type": "section", "text": {
                                     "text": m.text}}]) + "</div>")
            txt = folder / f"{channel}.txt"
            txt.write_text("\n".join(lines) + "\n", encoding="utf-8")
            html = folder / f"{channel}.html"
            html.write_text(
                "<!DOCTYPE html><meta charset='utf-8'><title>#" + escape(channel) + "</title>"
                "<style>body{font:14px sans-serif;max-width:760px;margin:2em auto}"
                ".msg{border:1px solid #ddd;border-radius:6px;padding:8px 12px;margin:10px 0}"
                ".meta{color:#888;font-size:12px}.block{white-space:pre-wrap;margin:4px 0}"
                "</style><h1>#" + escape(channel) + "</h1>" + "".join(cards), encoding="utf-8")
            written += [txt, html]
        return written

    # -- the API ---------------------------------------------------------------------------
    def _payload(self, request: Request) -> dict[str, Any]:
        data: dict[str, Any] = {k: v[-1] for k, v in request.query.items()}
        ctype = request.headers.get("content-type", "")
        if request.body:
            if "json" in ctype:
                data.update(json.loads(request.body.decode("utf-8")))
            else:
                data.update({k: v[-1] for k, v in parse_qs(request.body.decode("utf-8"),
                                                            keep_blank_values=True).items()})
        for key in ("blocks", "files", "attachments"):
            if isinstance(data.get(key), str):
                try:
                    data[key] = json.loads(data[key])
                except ValueError:
                    pass
        return data

    def _api(self, request: Request) -> Response:
        assert request.match is not None
        method = request.match.group(1)
        payload = self._payload(request)
        with self._lock2:
            self.calls.append((method, payload))
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() or payload.get("token", "")
        if token != self._token:
            return Response.json({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return Response.json({"ok": False, "error": "unknown_method"})
        result = handler(payload)
        return Response.json(result)

    def _next_ts(self) -> str:
        return f"1764650000.{next(self._ts):06d}"

    def _check_message(self, p: dict[str, Any]) -> str | None:
        blocks = p.get("blocks") or []
        if not p.get("text") and not blocks:
            return "no_text"
        if len(blocks) > MAX_BLOCKS:
            return "invalid_blocks"
        for b in blocks:
            text = (b.get("text") or {}).get("text", "") if isinstance(b, dict) else ""
            if b.get("type") == "section" and len(text) > 3000:
                return "invalid_blocks"
            if b.get("type") == "header" and len(text) > 150:
                return "invalid_blocks"
        if len(p.get("text") or "") > MAX_TEXT:
            return "msg_too_long"
        return None

    def _channel_ok(self, channel: str | None) -> bool:
        return bool(channel) and (channel in self.channels or str(channel).startswith("D"))

    def _m_auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://agence.slack.com/", "team": "Agence",
                "user": "tmabot", "team_id": "T0AGENCE", "user_id": "U0TMABOT",
                "bot_id": "B0TMABOT", "is_enterprise_install": False}

    def _post(self, p: dict[str, Any], kind: str) -> dict[str, Any]:
        channel = str(p.get("channel") or "")
        if not self._channel_ok(channel):
            return {"ok": False, "error": "channel_not_found"}
        error = self._check_message(p)
        if error:
            return {"ok": False, "error": error}
        ts = self._next_ts()
        msg = Posted(channel, ts, str(p.get("text") or ""), list(p.get("blocks") or []), kind,
                     p.get("user"), thread_ts=p.get("thread_ts"))
        with self._lock2:
            self.messages.append(msg)
        return {"ok": True, "channel": channel, "ts": ts,
                "message": {"type": "message", "text": msg.text, "blocks": msg.blocks,
                            "ts": ts, "bot_id": "B0TMABOT"}}

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        return self._post(p, "message")

    def _m_chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        out = self._post(p, "ephemeral")
        return {"ok": True, "message_ts": out["ts"]} if out.get("ok") else out

    def _m_chat_scheduleMessage(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        out = self._post(p, "scheduled")
        if not out.get("ok"):
            return out
        return {"ok": True, "channel": out["channel"], "scheduled_message_id":
                f"Q{next(self._ids):08d}", "post_at": int(p.get("post_at") or 0)}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        for m in self.messages:
            if m.channel == p.get("channel") and m.ts == p.get("ts"):
                error = self._check_message(p)
                if error:
                    return {"ok": False, "error": error}
                m.text = str(p.get("text") or m.text)
                m.blocks = list(p.get("blocks") or [])
                m.updated += 1
                return {"ok": True, "channel": m.channel, "ts": m.ts, "text": m.text}
        return {"ok": False, "error": "message_not_found"}

    def _m_conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        users = str(p.get("users") or "")
        if not users or users not in self.users.values():
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "channel": {"id": "D" + users.lstrip("U")}}

    def _m_users_lookupByEmail(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        email = str(p.get("email") or "").lower()
        user = self.users.get(email)
        if user is None:
            return {"ok": False, "error": "users_not_found"}
        return {"ok": True, "user": {"id": user, "name": email.split("@")[0],
                                     "profile": {"email": email}}}

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        if not p.get("filename") or not p.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ids):08d}"
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _upload(self, request: Request) -> Response:
        assert request.match is not None
        self.uploads[request.match.group(1)] = request.body
        return Response(200, f"OK - {len(request.body)}".encode(), content_type="text/plain")

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        files = p.get("files") or []
        if not files or any(f.get("id") not in self.uploads for f in files):
            return {"ok": False, "error": "file_not_found"}
        channel = p.get("channel_id")
        if channel and not self._channel_ok(channel):
            return {"ok": False, "error": "channel_not_found"}
        done = [{"id": f["id"], "title": f.get("title") or f["id"],
                 "size": len(self.uploads[f["id"]])} for f in files]
        if channel:
            msg = Posted(channel, self._next_ts(), str(p.get("initial_comment") or ""), [],
                         "file", files=done)
            self.messages.append(msg)
        return {"ok": True, "files": done}

    def _response_url(self, request: Request) -> Response:
        payload = json.loads(request.body.decode("utf-8") or "{}")
        assert request.match is not None
        self.calls.append(("response_url:" + request.match.group(1), payload))
        return Response(200, b"ok", content_type="text/plain")


def _block_text(block: dict[str, Any]) -> str:
    if not isinstance(block, dict):
        return str(block)
    parts = []
    text = block.get("text")
    if isinstance(text, dict):
        parts.append(str(text.get("text", "")))
    for f in block.get("fields") or []:
        parts.append(str(f.get("text", "")))
    for e in block.get("elements") or []:
        if isinstance(e, dict):
            t = e.get("text")
            parts.append(str(t.get("text", "")) if isinstance(t, dict) else str(t or ""))
    return " | ".join(p for p in parts if p)
