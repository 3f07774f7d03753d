"""acme_utils.text."""

from __future__ import annotations

import unittest

from acme_utils import format_cents, truncate


class TextTest(unittest.TestCase):
    def test_truncate(self) -> None:
        self.assertEqual(truncate("short", 10), "short")
        self.assertEqual(truncate("a long sentence", 7), "a long…")
        self.assertEqual(len(truncate("x" * 50, 12)), 12)
        with self.assertRaises(ValueError):
            truncate("abc", 0, ellipsis="...")

    def test_format_cents(self) -> None:
        self.assertEqual(format_cents(123456), "$1,234.56")
        self.assertEqual(format_cents(-5), "-$0.05")
        self.assertEqual(format_cents(1999, "EUR"), "€19.99")
        self.assertEqual(format_cents(100, "CHF"), "CHF 1.00")


if __name__ == "__main__":
    unittest.main()
