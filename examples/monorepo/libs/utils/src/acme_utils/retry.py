"""Retrying with exponential backoff; the schedule is a pure function, easy to test."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def backoff_schedule(
    attempts: int, base: float = 0.1, factor: float = 2.0, cap: float = 5.0
) -> tuple[float, ...]:
    """The delays between ``attempts`` tries: base, base*factor, ... each at most ``cap``."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    return tuple(min(cap, base * factor**n) for n in range(attempts - 1))


def retry(
    action: Callable[[], T],
    attempts: int = 3,
    retry_on: tuple[type[BaseException], ...] = (OSError,),
    sleep: Callable[[float], object] = time.sleep,
) -> tuple[T, int]:
    """Call ``action`` until it succeeds; return its result and the number of tries."""
    delays = backoff_schedule(attempts)
    for tries, delay in enumerate((*delays, None), start=1):
        try:
            return action(), tries
        except retry_on:
            if delay is None:
                raise
            sleep(delay)
    raise AssertionError("unreachable")
