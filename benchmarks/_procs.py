"""Process plumbing shared by the benchmarks: the measured code runs in a process of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def run_in_process(ctx: Any, target: Callable[..., None], *args: Any) -> Any:
    """Run `target(conn, *args)` in a fresh process and return what it sends back; a child
    that dies before answering stops the benchmark instead of hanging it."""
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child, *args))
    proc.start()
    while not parent.poll(0.5):
        if not proc.is_alive():
            raise SystemExit(f"{target.__name__} died with exit code {proc.exitcode}")
    out = parent.recv()
    proc.join()
    if proc.exitcode:  # answered, then crashed (at close, at exit): the figures are suspect
        raise SystemExit(f"{target.__name__} exited with code {proc.exitcode}")
    return out


def ask(conn: Any, cmd: str, arg: Any = None) -> Any:
    """One request to a helper process's command loop."""
    conn.send((cmd, arg))
    return conn.recv()
