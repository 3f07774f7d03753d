"""acme-core: the domain models and identifiers every Acme package shares."""

from __future__ import annotations

from acme_core.ids import slugify, stable_id
from acme_core.models import (
    Order,
    OrderLine,
    OrderStatus,
    Role,
    User,
    can_manage,
    order_total_cents,
)

__version__ = "0.3.0"
__all__ = [
    "Order",
    "OrderLine",
    "OrderStatus",
    "Role",
    "User",
    "can_manage",
    "order_total_cents",
    "slugify",
    "stable_id",
]
