"""What comes from outside as numbers, generated: the API's ``limit`` (any text, Unicode digits
among it) and GitHub's rate-limit headers (huge, negative, non-numeric, other scripts' digits). Each
is a bounded number or refused, never an exception of another kind and never unbounded."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from worker.api import MAX_LIMIT, BadQuery, parse_query
from worker.github_calls import MAX_RATE_LIMIT, MAX_WAIT_SECONDS, _retry_after, header_number

NOW = 1_800_000_000.0
UNICODE_DIGITS = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=6)
numbers_as_text = st.one_of(
    st.integers(-(10**500), 10**500).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    UNICODE_DIGITS,
    st.text(max_size=40),
    st.sampled_from(["", " 1", "1 ", "+1", "-1", "0x10", "1e3", "1_000", "\u00b2", "\u0661", "9" * 4301]),
)


@given(numbers_as_text)
@settings(max_examples=400)
@example("\u00b2")
@example("\u0661\u0660")
def test_the_api_limit_is_one_to_a_thousand_in_ascii_digits_or_refused(text):
    try:
        _filters, limit = parse_query({"limit": text})
    except BadQuery:
        assert not (text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= MAX_LIMIT)
        return
    assert 1 <= limit <= MAX_LIMIT
    assert text.isascii()


@given(st.dictionaries(
    st.sampled_from(["retry-after", "x-ratelimit-remaining", "x-ratelimit-reset"]), numbers_as_text
))  # fmt: skip
@settings(max_examples=400)
@example({"retry-after": "999999999999", "x-ratelimit-remaining": "9" * 400})
@example({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "-5"})
def test_githubs_headers_give_a_bounded_wait_and_count(headers):
    wait = _retry_after(headers, NOW)
    assert wait is not None
    assert 0.0 <= wait <= MAX_WAIT_SECONDS
    remaining = header_number(headers.get("x-ratelimit-remaining"), MAX_RATE_LIMIT)
    assert remaining is None or 0 <= remaining <= MAX_RATE_LIMIT
