"""A queued body as stored: packed with LZ4 or as signed, read back byte for byte either way."""

import pytest

from shared.bodies import LZ4_MAGIC, UnreadableBody, pack, unpack
from tests.corpus import deliveries


@pytest.mark.parametrize("delivery", deliveries()[:20], ids=lambda d: d.name)
def test_a_packed_body_reads_back_as_signed_and_is_smaller(delivery):
    packed = pack(delivery.body)
    assert packed.startswith(LZ4_MAGIC)
    assert unpack(packed) == delivery.body
    if len(delivery.body) > 4096:
        assert len(packed) < len(delivery.body) / 2


@pytest.mark.parametrize("body", [b'{"action":"queued"}', b"payload=%7B%7D", b"", b" \n{}", b"\x04\x22\x4d"])
def test_a_body_stored_as_signed_is_read_as_it_is(body):
    assert unpack(body) == body  # JSON and form bodies never start with the LZ4 magic number


def test_a_damaged_frame_is_refused_not_passed_on():
    with pytest.raises(UnreadableBody):
        unpack(LZ4_MAGIC + b"\xff" * 40)
    with pytest.raises(UnreadableBody):
        unpack(pack(b'{"a": 1}' * 100)[:-9])  # cut short
