"""A whole HTTP exchange within a deadline, and a body read up to a size.

httpx's timeouts bound each network wait, not the exchange: a server that sends
one byte every few seconds never trips them. A deploy that waits on such a
server holds its environment's lock, so the exchanges a deploy makes (incident
feed, webhook) run in a worker thread that is abandoned, and its connection
closed, when the deadline passes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

import httpx

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """The exchange did not end within its deadline."""


def within(seconds: float, exchange: Callable[[], T], client: httpx.Client) -> T:
    """``exchange()``'s result, or DeadlineExceeded after ``seconds`` (the client is
    closed then, which ends the abandoned exchange)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deadline")
    future = pool.submit(exchange)
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        client.close()
        raise DeadlineExceeded(f"no complete answer within {seconds:g} s") from None
    finally:
        pool.shutdown(wait=False)


def read_limited(answer: httpx.Response, limit: int) -> bytes | None:
    """The body of a streamed answer, or None when it is longer than ``limit`` bytes."""
    body = bytearray()
    for chunk in answer.iter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
