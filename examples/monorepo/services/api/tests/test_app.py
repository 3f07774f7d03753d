"""The API end to end: routing, handlers, generated request validation, JSON bodies."""

from __future__ import annotations

import json
import unittest

from acme_api import ROUTES, Api, Store


class ApiTest(unittest.TestCase):
    def setUp(self) -> None:
        self.api = Api(Store.demo())
        self.grace = next(u for u in self.api.store.users.values() if u.name == "Grace Hopper")

    def order(self, lines: list[dict[str, object]], user_id: str | None = None) -> str:
        return json.dumps({"user_id": user_id or self.grace.id, "lines": lines})

    def test_users_are_listed_by_email(self) -> None:
        response = self.api.handle("GET", "/users")
        self.assertEqual(response.status, 200)
        emails = [u["email"] for u in json.loads(response.json())]
        self.assertEqual(emails, ["ada@acme.test", "alan@acme.test", "grace@acme.test"])

    def test_one_user_and_a_missing_one(self) -> None:
        self.assertEqual(self.api.handle("GET", f"/users/{self.grace.id}").body, self.grace)
        missing = self.api.handle("GET", "/users/usr_nobody")
        self.assertEqual((missing.status, missing.body.title), (404, "Not found"))

    def test_place_and_fetch_an_order(self) -> None:
        created = self.api.handle("POST", "/orders", self.order([{"sku": "mug", "quantity": 2}]))
        self.assertEqual(created.status, 201)
        self.assertEqual(created.body["total"], "$25.00")
        self.assertEqual(created.body["status"], "pending")
        fetched = self.api.handle("GET", f"/orders/{created.body['id']}")
        self.assertEqual(fetched.body, created.body)

    def test_bad_orders_are_problems(self) -> None:
        unknown = self.api.handle("POST", "/orders", self.order([{"sku": "car", "quantity": 1}]))
        self.assertEqual((unknown.status, unknown.body.title), (422, "Bad line"))
        invalid = self.api.handle("POST", "/orders", '{"user_id": 7, "lines": []}')
        self.assertEqual(invalid.status, 400)
        self.assertIn("CreateOrderRequest.user_id: expected str", invalid.body.detail)
        empty = self.api.handle("POST", "/orders", self.order([]))
        self.assertEqual(empty.body.title, "Empty order")

    def test_unrouted_requests_are_404(self) -> None:
        self.assertEqual(self.api.handle("DELETE", "/users").status, 404)

    def test_every_route_has_a_handler(self) -> None:
        self.assertEqual(set(self.api.handlers), set(ROUTES))


if __name__ == "__main__":
    unittest.main()
