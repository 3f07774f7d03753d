"""acme_ui.components, using the Role enum of acme-core."""

from __future__ import annotations

import unittest

from acme_core import Role
from acme_ui import nav, page, render, role_badge, table


class ComponentsTest(unittest.TestCase):
    def test_role_badge(self) -> None:
        self.assertEqual(
            render(role_badge(Role.ADMIN)), '<span class="badge badge-red">admin</span>'
        )

    def test_table_checks_row_width(self) -> None:
        html = render(table(["a", "b"], [["1", "2"]]))
        self.assertIn("<th>a</th><th>b</th>", html)
        self.assertIn("<td>1</td><td>2</td>", html)
        with self.assertRaisesRegex(ValueError, "row 2 has 1 cells, expected 2"):
            table(["a", "b"], [["1", "2"], ["3"]])

    def test_nav_marks_the_current_page(self) -> None:
        html = render(nav([("index.html", "Home"), ("users.html", "Users")], "users.html"))
        self.assertIn('<a aria-current="page" href="users.html">Users</a>', html)
        self.assertIn('<a href="index.html">Home</a>', html)

    def test_page_is_a_whole_document(self) -> None:
        html = page("Title & more", [])
        self.assertTrue(html.startswith('<!doctype html>\n<html lang="en">'))
        self.assertIn("<title>Title &amp; more</title>", html)
        self.assertIn("<h1>Title &amp; more</h1>", html)
        self.assertEqual(html, page("Title & more", []))
        self.assertIn("<h1>Users</h1>", page("Users · Shop", [], heading="Users"))


if __name__ == "__main__":
    unittest.main()
