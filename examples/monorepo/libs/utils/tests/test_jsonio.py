"""acme_utils.jsonio, with the records of acme-core (imported from its bundle)."""

from __future__ import annotations

import unittest

from acme_core import Order, OrderStatus
from acme_utils import dumps, load_order

TEXT = '{"id":"o1","lines":[{"quantity":1,"sku":"mug","unit_price_cents":900}],'
TEXT += '"status":"pending","user_id":"u1"}'


class JsonTest(unittest.TestCase):
    def test_round_trip_is_canonical(self) -> None:
        order = load_order(TEXT)
        self.assertIsInstance(order, Order)
        self.assertIs(order.status, OrderStatus.PENDING)
        self.assertEqual(dumps(order), TEXT)
        self.assertEqual(dumps({"b": [order.lines[0]], "a": 1})[:6], '{"a":1')

    def test_unknown_objects_are_refused(self) -> None:
        with self.assertRaisesRegex(TypeError, "cannot encode object"):
            dumps(object())


if __name__ == "__main__":
    unittest.main()
