"""Threads around sllurp's blocking calls, made so that none can keep the agent alive after a stop.

sllurp reads each connection on a thread of its own (its "socket thread",
started by ``LLRPReaderClient.connect``) blocked in ``select()`` on the socket.
Two things about it decide whether a SIGTERM ends the agent promptly:

* A thread takes its daemon flag from the thread that starts it.  Started
  from a thread of asyncio's default executor (``asyncio.to_thread``), the
  socket thread is not a daemon, and the interpreter waits at exit for every
  thread that is not: one socket thread that never ends holds the process
  until it is killed.  :func:`off_loop` runs blocking calls on a daemon thread
  of their own instead, so the socket thread ``connect`` starts is a daemon
  too, and the event loop's close does not wait for them either.

* ``LLRPReaderClient.hard_disconnect`` shuts the socket down and closes it at
  once, from our thread.  If the socket thread is between its checks and its
  ``select()`` call then, it selects on a descriptor number that is closed, or
  already reused by the next connection's socket, and may wait there for
  good (seen under load: the thread outlived its connection, and the agent
  its SIGTERM).  :func:`shut_down` only shuts the socket down: the shutdown
  is a state of the socket, so the socket thread's ``select()`` returns at
  once whenever it calls it, the thread reads end-of-stream and ends by
  itself; the descriptor is closed after it has (``hard_disconnect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["off_loop", "shut_down"]

T = TypeVar("T")


def off_loop(fn: Callable[..., T], *args: Any, name: str) -> asyncio.Future[T]:
    """Run ``fn(*args)`` on a new daemon thread; await the result on the running loop."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, exc: Exception | None) -> None:
        if done.done():  # the waiter was cancelled (a stop that did not wait for us)
            return
        if exc is not None:
            done.set_exception(exc)
        else:
            done.set_result(result)  # type: ignore[arg-type]  # fn returned it: it is a T

    def target() -> None:
        try:
            result: T | None = fn(*args)
            exc: Exception | None = None
        except Exception as error:  # handed to the awaiting task
            result, exc = None, error
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(settle, result, exc)

    threading.Thread(target=target, name=name, daemon=True).start()
    return done


def shut_down(client: Any) -> None:
    """Shut the connection's socket down without closing it, so that sllurp's socket thread ends by itself."""
    # sllurp has no public way to do this; ``_socket`` is its connection's socket (None once closed).
    sock = getattr(client, "_socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # not connected any more: the socket thread has seen it already
            sock.shutdown(socket.SHUT_RDWR)
