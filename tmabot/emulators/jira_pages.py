"""Search paging for the Jira emulator: opaque page tokens, and pages rendered ahead."""

from __future__ import annotations

import base64
import binascii
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from tmabot.emulators.http import gc_paused

_KEPT = 16  # pages rendered ahead and not yet asked for
BAD_TOKEN = "The provided next page token is invalid or has expired."


class BadToken(ValueError):
    """A token that is not ours, or belongs to another query: Jira answers 400."""


# Tokens are base64 of "kind:position:position:hash of the query": opaque to clients,
# bound to the query they came from.
def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _unb64(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadToken(BAD_TOKEN) from None


def encode_search_token(snap_id: str, offset: int, query_hash: str) -> str:
    return _b64(f"s:{snap_id}:{offset}:{query_hash}")


def decode_search_token(token: str, query_hash: str) -> tuple[str, int]:
    parts = _unb64(token).split(":")
    if len(parts) != 4 or parts[0] != "s" or parts[3] != query_hash or not parts[2].isdigit():
        raise BadToken(BAD_TOKEN)  # garbage, or a token from another query
    return parts[1], int(parts[2])


def encode_bulk_token(issue_pos: int, hist_pos: int, request_hash: str) -> str:
    return _b64(f"c:{issue_pos}:{hist_pos}:{request_hash}")


def decode_bulk_token(token: Any, request_hash: str) -> tuple[int, int]:
    if not isinstance(token, str):
        raise BadToken(BAD_TOKEN)
    parts = _unb64(token).split(":")
    if (len(parts) != 4 or parts[0] != "c" or parts[3] != request_hash
            or not parts[1].isdigit() or not parts[2].isdigit()):
        raise BadToken(BAD_TOKEN)
    return int(parts[1]), int(parts[2])


class _Slot:
    def __init__(self, stamp: object) -> None:
        self.stamp = stamp
        self.done = threading.Event()
        self.body: bytes | None = None


class PagePrefetcher:
    """A client paging through a search waits for each page, then digests it: render
    page k+1 on the idle core meanwhile. A page rendered ahead is served only if the
    dataset stamp has not moved since, so it is never staler than a fresh render.
    """

    def __init__(self, stamp: Callable[[], object], *, enabled: bool = True) -> None:
        self._stamp = stamp
        self.enabled = enabled
        self._slots: OrderedDict[Hashable, _Slot] = OrderedDict()
        self._lock = threading.Lock()

    def serve(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        with self._lock:
            slot = self._slots.pop(key, None)
        if slot is not None and slot.done.wait(timeout=60) and slot.body is not None \
                and slot.stamp == self._stamp():
            return slot.body
        return render()

    def prefetch(self, key: Hashable, render: Callable[[], bytes]) -> None:
        if not self.enabled:
            return
        slot = _Slot(self._stamp())
        with self._lock:
            if key in self._slots:
                return
            self._slots[key] = slot
            while len(self._slots) > _KEPT:
                self._slots.popitem(last=False)

        def run() -> None:
            try:
                with gc_paused():
                    slot.body = render()
            except Exception:  # noqa: BLE001
                # Speculative work only: serve() renders again in the request's own thread,
                # where the same error surfaces as a 500 the client and tests can see.
                slot.body = None
            finally:
                slot.done.set()

        threading.Thread(target=run, name="jira-prefetch", daemon=True).start()
