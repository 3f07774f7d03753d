"""Routing and handlers: ``Api.handle(method, path, body)`` -> ``Response``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from acme_api_messages import CreateOrderRequest, Problem
from acme_core import Order, OrderLine, OrderStatus, order_total_cents, stable_id
from acme_utils import dumps, format_cents

from acme_api.store import Store


@dataclass(frozen=True)
class Route:
    """One endpoint; ``{name}`` in the pattern matches one path segment."""

    method: str
    pattern: str
    summary: str

    def match(self, method: str, path: str) -> dict[str, str] | None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern)
        found = re.fullmatch(regex, path)
        return found.groupdict() if found and method == self.method else None


@dataclass(frozen=True)
class Response:
    status: int
    body: Any

    def json(self) -> str:
        return dumps(self.body)


ROUTES = (
    Route("GET", "/users", "List the users"),
    Route("GET", "/users/{user_id}", "One user"),
    Route("GET", "/products", "List the products with their prices"),
    Route("POST", "/orders", "Place an order (body: CreateOrderRequest)"),
    Route("GET", "/orders/{order_id}", "One order with its total"),
)


def problem(status: int, title: str, detail: str) -> Response:
    return Response(status, Problem(status=status, title=title, detail=detail))


class Api:
    """The API over one Store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.handlers: dict[Route, Callable[..., Response]] = dict(
            zip(
                ROUTES,
                (self.users, self.user, self.products, self.create_order, self.order),
                strict=True,
            )
        )

    def handle(self, method: str, path: str, body: str | None = None) -> Response:
        """Answer one request; errors are Problem bodies, never exceptions."""
        for route, handler in self.handlers.items():
            params = route.match(method, path)
            if params is None:
                continue
            try:
                return handler(body, **params) if method == "POST" else handler(**params)
            except ValueError as exc:
                return problem(400, "Bad request", str(exc))
        return problem(404, "Not found", f"no route for {method} {path}")

    def users(self) -> Response:
        return Response(200, sorted(self.store.users.values(), key=lambda u: u.email))

    def user(self, user_id: str) -> Response:
        found = self.store.users.get(user_id)
        return Response(200, found) if found else problem(404, "Not found", f"no user {user_id}")

    def products(self) -> Response:
        return Response(
            200,
            [
                {"sku": p.sku, "name": p.name, "price": format_cents(p.price_cents)}
                for p in sorted(self.store.products.values(), key=lambda p: p.sku)
            ],
        )

    def create_order(self, body: str | None) -> Response:
        request = CreateOrderRequest.from_dict(json.loads(body or "{}"))
        if request.user_id not in self.store.users:
            return problem(422, "Unknown user", f"no user {request.user_id}")
        lines = []
        for line in request.lines:
            product = self.store.products.get(line.sku)
            if product is None or line.quantity < 1:
                return problem(422, "Bad line", f"{line.quantity} x {line.sku!r}")
            lines.append(OrderLine(line.sku, line.quantity, product.price_cents))
        if not lines:
            return problem(422, "Empty order", "an order needs at least one line")
        order_id = stable_id("ord", request.user_id, str(len(self.store.orders)))
        order = Order(order_id, request.user_id, OrderStatus.PENDING, tuple(lines))
        self.store.orders[order.id] = order
        return Response(201, self._with_total(order))

    def order(self, order_id: str) -> Response:
        found = self.store.orders.get(order_id)
        if found is None:
            return problem(404, "Not found", f"no order {order_id}")
        return Response(200, self._with_total(found))

    @staticmethod
    def _with_total(order: Order) -> dict[str, Any]:
        return order.to_dict() | {"total": format_cents(order_total_cents(order))}
