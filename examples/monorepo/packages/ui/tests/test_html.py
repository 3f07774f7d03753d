"""acme_ui.html."""

from __future__ import annotations

import unittest

from acme_ui import h, render


class RenderTest(unittest.TestCase):
    def test_nested_elements_and_sorted_attributes(self) -> None:
        node = h("p", "Hi ", h("a", "there", title="x", href="/t"), id="greeting")
        self.assertEqual(render(node), '<p id="greeting">Hi <a href="/t" title="x">there</a></p>')

    def test_text_and_attributes_are_escaped(self) -> None:
        self.assertEqual(render(h("b", "<script>&")), "<b>&lt;script&gt;&amp;</b>")
        self.assertEqual(render(h("a", href='"x"')), '<a href="&quot;x&quot;"></a>')

    def test_attribute_spellings(self) -> None:
        node = h("input", class_="c", data_id="7", disabled=True, hidden=False)
        self.assertEqual(render(node), '<input class="c" data-id="7" disabled>')

    def test_none_children_are_skipped(self) -> None:
        self.assertEqual(render(h("div", None, "x", None)), "<div>x</div>")


if __name__ == "__main__":
    unittest.main()
