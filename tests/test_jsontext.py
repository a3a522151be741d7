"""jsontext.dumps writes what json.dumps(value, indent=2) writes, for any value."""

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from plansync import jsontext

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(),
                    st.floats(allow_nan=True, allow_infinity=True))
KEYS = st.one_of(st.text(), st.integers(), st.booleans(), st.none(), st.floats())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=6), inner, max_size=4),
    st.dictionaries(KEYS, inner, max_size=3)), max_leaves=30)


@settings(max_examples=500)
@given(VALUES)
def test_as_json_dumps_with_indent_2(value: Any) -> None:
    assert jsontext.dumps(value) == json.dumps(value, indent=2)


def test_a_value_json_cannot_write_is_refused_alike() -> None:
    for value in ({"a": {1, 2}}, [object()], {("a",): 1}):
        try:
            json.dumps(value, indent=2)
        except TypeError as exc:
            expected = str(exc)
        try:
            jsontext.dumps(value)
        except TypeError as exc:
            assert str(exc) == expected
        else:
            raise AssertionError(f"{value!r} was written")
