"""The pages of the site, rendered in memory from the demo API."""

from __future__ import annotations

import unittest

from acme_api import ROUTES, Api, Store
from acme_web import NAV, pages


class PagesTest(unittest.TestCase):
    def setUp(self) -> None:
        self.pages = pages(Api(Store.demo()), "Shop")

    def test_one_page_per_nav_entry(self) -> None:
        self.assertEqual(sorted(self.pages), sorted(name for name, _ in NAV))

    def test_titles_and_current_link(self) -> None:
        users = self.pages["users.html"]
        self.assertIn("<title>Users · Shop</title>", users)
        self.assertIn("<h1>Users</h1>", users)
        self.assertIn('<a aria-current="page" href="users.html">Users</a>', users)

    def test_users_have_role_badges(self) -> None:
        users = self.pages["users.html"]
        self.assertIn("<td>Ada Lovelace</td>", users)
        self.assertIn('<span class="badge badge-red">admin</span>', users)

    def test_api_page_lists_every_route(self) -> None:
        api = self.pages["api.html"]
        for route in ROUTES:
            self.assertIn(f"<code>{route.pattern}</code>", api)

    def test_prices_come_formatted_from_the_api(self) -> None:
        self.assertIn("<td>$19.99</td>", self.pages["products.html"])

    def test_rendering_is_deterministic(self) -> None:
        self.assertEqual(self.pages, pages(Api(Store.demo()), "Shop"))


if __name__ == "__main__":
    unittest.main()
