"""Which stored values a scrape writes as they are: what Prometheus's and OpenMetrics' parsers take."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.textformat import all_stored_values, stored_value

GOOD = [b"0", b"3", b"1.5", b"1.0", b"-0.25", b"1e+20", b"1.0000000000000001e+20", b".5", b"nan", b"NaN",
        b"inf", b"+Inf", b"-Inf"]  # fmt: skip
BAD = [b"", b"eleven", b"NaNa", b"1_000", b" 1", b"1 ", b"9" * 400, b"1.2.3", b"e", b"--1", b"\xff",
       b"infinity", b"0x10", b"1\n2"]  # fmt: skip


@pytest.mark.parametrize("value", GOOD)
def test_numbers_as_redis_and_python_write_them_are_written(value):
    assert stored_value(value) == value.decode()
    assert all_stored_values([value, b"1"])


@pytest.mark.parametrize("value", BAD)
def test_anything_else_is_not(value):
    assert stored_value(value) is None
    assert not all_stored_values([b"1", value])


@given(st.lists(st.one_of(st.sampled_from(GOOD + BAD), st.binary(max_size=40)), max_size=8))
def test_checked_together_as_each_alone(values):
    assert all_stored_values(values) == all(stored_value(v) is not None for v in values)
