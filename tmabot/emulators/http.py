"""A reusable loopback HTTP server for tracker emulators: routing, request log, fault injection."""

from __future__ import annotations

import gc
import json
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"


def json_text(obj: Any) -> str:
    """Compact JSON, as the emulators always answer (no spaces: it is measurably faster)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, check_circular=False)


def dump_json(obj: Any) -> bytes:
    return json_text(obj).encode("utf-8")


class RawJSON(str):
    """JSON text that `compose_json` splices verbatim (pre-rendered fragments)."""


def compose_json(obj: Any) -> str:
    """JSON text of a small envelope (dicts, lists, scalars) holding RawJSON fragments.

    Lets emulators write the bulk of a page straight to text and still build the
    wrapper as plain data. Dicts and lists recurse; everything else goes to json.dumps.
    """
    if isinstance(obj, RawJSON):
        return obj
    if isinstance(obj, dict):
        return "{" + ",".join(
            f"{json_text(str(k))}:{compose_json(v)}" for k, v in obj.items()
        ) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(compose_json(v) for v in obj) + "]"
    return json_text(obj)


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Suspend the cyclic GC while a handler builds (and drops) a big response tree.

    Otherwise the half-built pages get promoted to the old generation, and each full
    collection rescans the whole dataset: about half the rendering time for 20k issues.
    The trees have no cycles, so reference counting frees them anyway.
    """
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


@dataclass
class Request:
    """One parsed incoming request, as handlers see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    match: re.Match[str] | None = None  # the route's match: handlers read path groups from it

    def param(self, name: str, default: str | None = None) -> str | None:
        """The last value of a query parameter."""
        values = self.query.get(name)
        return values[-1] if values else default

    def params(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def json(self) -> Any:
        """The body parsed as JSON (ValueError when it is not)."""
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_CONTENT_TYPE

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls(status, dump_json(obj), dict(headers or {}))

    @classmethod
    def composed(cls, obj: Any, status: int = 200) -> Response:
        """A response whose JSON holds RawJSON fragments (see compose_json)."""
        return cls(status, compose_json(obj).encode("utf-8"))


@dataclass(frozen=True)
class LoggedRequest:
    """What the request log keeps: never headers (they carry credentials)."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int  # 0 when the connection was dropped without an answer
    timestamp: float  # time.time() when the request arrived
    body: bytes = b""
    faulted: bool = False

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class Fault:
    """A canned misbehaviour served instead of (or before) the real answer."""

    pattern: re.Pattern[str]
    method: str | None
    status: int | None
    headers: dict[str, str]
    body: Any
    delay: float | None
    malformed: bool
    drop: bool
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and bool(self.pattern.search(path))


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: EmulatorServer


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse one connection per session
    server: _Server

    def setup(self) -> None:
        super().setup()
        # One write per response plus no Nagle: avoids 40 ms delayed-ACK stalls on loopback.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.emulator._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._track(self.connection, add=False)

    def _dispatch(self) -> None:
        self.server.emulator._serve(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the emulator keeps its own log; stderr noise would drown test output

    def write_response(self, response: Response) -> None:
        head = [f"HTTP/1.1 {response.status} {_reason(response.status)}"]
        headers = {"Content-Type": response.content_type, **response.headers}
        headers["Content-Length"] = str(len(response.body))
        if self.close_connection:
            headers["Connection"] = "close"
        head.extend(f"{k}: {v}" for k, v in headers.items())
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD":
            payload += response.body
        try:
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            # The client gave up (e.g. its timeout fired during an injected delay).
            self.close_connection = True


def _reason(status: int) -> str:
    return BaseHTTPRequestHandler.responses.get(status, ("Unknown",))[0]


class EmulatorServer:
    """A loopback HTTP/1.1 server on an ephemeral port; subclasses add routes.

    Every request is logged (method, path, query, status, time); faults injected
    with `inject` are served before routing and each fires `times` times.
    """

    # Subclasses serving big JSON pages keep this; see gc_paused.
    pause_gc_in_handlers = True

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._routes: list[Route] = []
        self._faults: list[Fault] = []
        self._log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        # Tracebacks of handler crashes (served as 500s): tests assert this stays empty.
        self.handler_errors: list[str] = []

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> Self:
        if self._server is not None:
            return self
        server = _Server((self._host, 0), _RequestHandler)
        server.emulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-http", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        # Keep-alive handler threads block reading their sockets: wake them up.
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321 (no trailing slash)."""
        return f"http://{self._host}:{self.port}"

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # -- routing -------------------------------------------------------------
    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register `handler` for `method` on paths fully matching the regex `pattern`."""
        self._routes.append(Route(method.upper(), re.compile(pattern), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add_route(method, pattern, handler)
            return handler
        return register

    def authenticate(self, request: Request) -> Response | None:
        """Hook: return a response to refuse the request, None to let it through."""
        return None

    def error_response(self, status: int, message: str) -> Response:
        """Hook: the body of errors produced by the server itself (404, 405, 500, faults)."""
        return Response.json({"error": message}, status)

    # -- request log ---------------------------------------------------------
    @property
    def requests(self) -> list[LoggedRequest]:
        """A snapshot of the log, oldest first."""
        with self._lock:
            return list(self._log)

    def count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        with self._lock:
            return sum(
                1 for r in self._log
                if (method is None or r.method == method.upper())
                and (path_prefix is None or r.path.startswith(path_prefix))
            )

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, request: Request, status: int, arrived: float, faulted: bool) -> None:
        entry = LoggedRequest(
            request.method, request.path, request.query, status, arrived, request.body, faulted,
        )
        with self._lock:
            self._log.append(entry)

    # -- fault injection -----------------------------------------------------
    def inject(
        self, path_pattern: str, *, method: str | None = None, status: int | None = None,
        headers: dict[str, str] | None = None, body: Any = None, delay: float | None = None,
        malformed: bool = False, drop: bool = False, times: int = 1,
    ) -> Fault:
        """Misbehave on the next `times` requests whose path matches the regex `path_pattern`.

        `status` answers that status with `headers`/`body` (dict/list → JSON); `delay`
        sleeps before answering (alone, the real answer follows); `malformed` answers
        200 with a truncated JSON body; `drop` closes the connection without a word.
        """
        fault = Fault(
            re.compile(path_pattern), method.upper() if method else None, status,
            dict(headers or {}), body, delay, malformed, drop, times,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def chaos(self, rate: float, *, seed: int = 0, timeout_delay: float = 0.0) -> None:
        """From now on, misbehave on a random `rate` of requests: 429 (Retry-After 0),
        503, or a dropped connection (what a timeout looks like), in equal parts."""
        import random

        self._chaos_rate = rate
        self._chaos_rng = random.Random(seed)
        self._chaos_delay = timeout_delay

    def _chaos_fault(self) -> Fault | None:
        rate = getattr(self, "_chaos_rate", 0.0)
        if not rate:
            return None
        with self._lock:
            roll = self._chaos_rng.random()
            kind = self._chaos_rng.randrange(3)
        if roll >= rate:
            return None
        never = re.compile(r"$^")
        if kind == 0:
            return Fault(never, None, 429, {"Retry-After": "0"}, None, None, False, False, 1)
        if kind == 1:
            return Fault(never, None, 503, {}, None, None, False, False, 1)
        return Fault(never, None, None, {}, None, self._chaos_delay or None, False, True, 1)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _fault_response(self, fault: Fault) -> Response:
        assert fault.status is not None
        body = fault.body
        if body is None:
            response = self.error_response(fault.status, f"injected fault {fault.status}")
        elif isinstance(body, bytes):
            response = Response(fault.status, body)
        elif isinstance(body, str):
            response = Response(fault.status, body.encode("utf-8"))
        else:
            response = Response.json(body, fault.status)
        response.status = fault.status
        response.headers.update(fault.headers)
        return response

    # -- serving -------------------------------------------------------------
    def _serve(self, handler: _RequestHandler) -> None:
        arrived = time.time()
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        request = Request(
            method=handler.command, path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in handler.headers.items()}, body=body,
        )
        fault = self._take_fault(request.method, request.path) or self._chaos_fault()
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                self._record(request, 0, arrived, True)
                handler.close_connection = True
                try:
                    handler.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault.status is not None:
                response = self._fault_response(fault)
                self._record(request, response.status, arrived, True)
                handler.write_response(response)
                return
        response = self._dispatch(request)
        if fault is not None and fault.malformed:
            # Cut the real answer short: what a proxy timing out mid-body delivers.
            cut = response.body[: max(1, len(response.body) // 2)].rstrip(b"}]")
            response = Response(200, cut or b"{", dict(response.headers))
        self._record(request, response.status, arrived, fault is not None)
        handler.write_response(response)

    def _dispatch(self, request: Request) -> Response:
        path_matched = False
        for route in self._routes:
            match = route.pattern.fullmatch(request.path)
            if match is None:
                continue
            path_matched = True
            if route.method != request.method:
                continue
            request.match = match
            refusal = self.authenticate(request)
            if refusal is not None:
                return refusal
            try:
                if self.pause_gc_in_handlers:
                    with gc_paused():
                        return route.handler(request)
                return route.handler(request)
            except Exception as exc:  # a bug in a handler must surface as a 500, not a hang
                with self._lock:
                    self.handler_errors.append(traceback.format_exc())
                return self.error_response(500, f"{type(exc).__name__}: {exc}")
        if path_matched:
            return self.error_response(405, f"Method {request.method} not allowed")
        return self.error_response(404, f"No route for {request.method} {request.path}")
