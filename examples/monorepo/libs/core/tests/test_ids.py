"""acme_core.ids."""

from __future__ import annotations

import unittest

from acme_core import slugify, stable_id


class SlugifyTest(unittest.TestCase):
    def test_ascii_words_joined_by_dashes(self) -> None:
        self.assertEqual(slugify("Héllo, World!"), "hello-world")
        self.assertEqual(slugify("  --Acme  Store 2000-- "), "acme-store-2000")
        self.assertEqual(slugify("!!!"), "")


class StableIdTest(unittest.TestCase):
    def test_same_parts_same_id(self) -> None:
        self.assertEqual(stable_id("usr", "ada@example.com"), stable_id("usr", "ada@example.com"))
        self.assertRegex(stable_id("usr", "ada@example.com"), r"^usr_[0-9a-f]{12}$")

    def test_parts_are_separated(self) -> None:
        self.assertNotEqual(stable_id("o", "ab", "c"), stable_id("o", "a", "bc"))

    def test_prefix_must_be_an_identifier(self) -> None:
        with self.assertRaisesRegex(ValueError, "identifier"):
            stable_id("no-dash")


if __name__ == "__main__":
    unittest.main()
