"""acme_core.models, on top of the records generated from schema/models.json."""

from __future__ import annotations

import unittest

from acme_core import Order, OrderLine, OrderStatus, Role, User, can_manage, order_total_cents

ORDER = {
    "id": "ord_1",
    "user_id": "usr_1",
    "status": "paid",
    "lines": [
        {"sku": "mug", "quantity": 2, "unit_price_cents": 1250},
        {"sku": "tee", "quantity": 1, "unit_price_cents": 1999},
    ],
}


def user(role: Role, user_id: str = "usr_1") -> User:
    return User(id=user_id, email="ada@example.com", name="Ada", role=role)


class ModelsTest(unittest.TestCase):
    def test_order_round_trips_through_json_data(self) -> None:
        order = Order.from_dict(ORDER)
        self.assertIs(order.status, OrderStatus.PAID)
        self.assertEqual(order.lines[0], OrderLine("mug", 2, 1250))
        self.assertEqual(order.to_dict(), ORDER)

    def test_total(self) -> None:
        order = Order.from_dict(ORDER)
        self.assertEqual(order_total_cents(order), 4499)
        cancelled = Order.from_dict(dict(ORDER, status="cancelled"))
        self.assertEqual(order_total_cents(cancelled), 0)

    def test_invalid_data_is_refused(self) -> None:
        with self.assertRaisesRegex(ValueError, r"OrderLine\.quantity: expected int, got str"):
            Order.from_dict(
                dict(ORDER, lines=[{"sku": "mug", "quantity": "2", "unit_price_cents": 1}])
            )

    def test_who_can_manage_an_order(self) -> None:
        order = Order.from_dict(ORDER)
        self.assertTrue(can_manage(user(Role.ADMIN, "usr_9"), order))
        self.assertTrue(can_manage(user(Role.MEMBER), order))
        self.assertFalse(can_manage(user(Role.MEMBER, "usr_9"), order))
        self.assertFalse(can_manage(user(Role.VIEWER), order))


if __name__ == "__main__":
    unittest.main()
