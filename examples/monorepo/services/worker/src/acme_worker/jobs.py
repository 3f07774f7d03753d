"""Jobs, their handlers and the loop that runs them."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from acme_core import order_total_cents, slugify
from acme_utils import format_cents, load_order, retry, truncate


class Outcome(enum.Enum):
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    payload: str  # JSON text


@dataclass(frozen=True)
class Result:
    job_id: str
    outcome: Outcome
    tries: int
    output: str


def receipt(payload: str) -> str:
    """The text of an order's receipt: one line per product, then the total."""
    order = load_order(payload)
    lines = [f"Receipt {order.id}"]
    for line in order.lines:
        amount = format_cents(line.quantity * line.unit_price_cents)
        lines.append(f"{line.quantity:>3} x {truncate(line.sku, 20):<20} {amount:>10}")
    lines.append(f"{'total':>26} {format_cents(order_total_cents(order)):>10}")
    return "\n".join(lines)


def reindex(payload: str) -> str:
    """The search keys of a product name."""
    return " ".join(sorted(set(slugify(payload).split("-"))))


HANDLERS: Mapping[str, Callable[[str], str]] = {"receipt": receipt, "reindex": reindex}


def run(
    jobs: Iterable[Job],
    handlers: Mapping[str, Callable[[str], str]] = HANDLERS,
    attempts: int = 3,
    sleep: Callable[[float], Any] = lambda _: None,
) -> list[Result]:
    """Run every job; I/O errors are retried with backoff, other errors fail the job at once."""
    results = []
    for job in jobs:
        handler = handlers.get(job.kind)
        if handler is None:
            results.append(Result(job.id, Outcome.FAILED, 0, f"no handler for {job.kind!r}"))
            continue
        try:
            output, tries = retry(
                functools.partial(handler, job.payload), attempts=attempts, sleep=sleep
            )
        except (OSError, ValueError) as exc:
            tries = attempts if isinstance(exc, OSError) else 1
            results.append(Result(job.id, Outcome.FAILED, tries, f"{type(exc).__name__}: {exc}"))
            continue
        results.append(Result(job.id, Outcome.DONE, tries, output))
    return results
