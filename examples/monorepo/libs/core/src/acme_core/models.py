"""The records generated from schema/models.json, and the rules that go with them."""

from __future__ import annotations

from acme_core_models import Order, OrderLine, OrderStatus, Role, User

__all__ = ["Order", "OrderLine", "OrderStatus", "Role", "User", "can_manage", "order_total_cents"]


def order_total_cents(order: Order) -> int:
    """What the order costs, in cents; a cancelled order costs nothing."""
    if order.status is OrderStatus.CANCELLED:
        return 0
    return sum(line.quantity * line.unit_price_cents for line in order.lines)


def can_manage(user: User, order: Order) -> bool:
    """Admins manage every order, members their own, viewers none."""
    if user.role is Role.ADMIN:
        return True
    return user.role is Role.MEMBER and order.user_id == user.id
