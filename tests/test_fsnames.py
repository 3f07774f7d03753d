"""Names that are not UTF-8 as JSON-safe text (ggen.cache.fsnames)."""

from __future__ import annotations

import os

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ggen.cache.fsnames import MARK, portable, shown, unportable

texts = st.one_of(
    st.text(),
    st.binary().map(os.fsdecode),
    st.text().map(lambda t: MARK + t),
)


@given(texts)
def test_portable_is_json_safe_and_undone_by_unportable(text: str) -> None:
    encoded = portable(text)
    assert orjson.loads(orjson.dumps(encoded)) == encoded
    assert unportable(encoded) == text
    shown(text).encode("utf-8")


def test_utf8_text_is_kept_as_it_is() -> None:
    assert portable("src/café.txt") == "src/café.txt"
    assert portable(os.fsdecode(b"\xff")) == MARK + "ff"
    assert shown(os.fsdecode(b"a\xffb")) == "a\\xffb"
