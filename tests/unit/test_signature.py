import pytest

from receiver.signature import rejection_reason
from shared.signing import sign

# GitHub's published vector (validating-webhook-deliveries)
VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_HEADER = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def check(header, secrets=(VECTOR_SECRET,), sha1=None, body=VECTOR_BODY):
    return rejection_reason(body, header, sha1, [s.encode() for s in secrets])


def test_sign_reproduces_githubs_vector():
    assert sign(VECTOR_SECRET, VECTOR_BODY) == VECTOR_HEADER


def test_githubs_vector_is_accepted():
    assert check(VECTOR_HEADER) is None


def test_any_configured_secret_is_accepted_for_rotation():
    assert check(VECTOR_HEADER, secrets=("new-secret", VECTOR_SECRET)) is None
    assert check(sign("new-secret", VECTOR_BODY), secrets=("new-secret", VECTOR_SECRET)) is None


def test_rotated_out_secret_is_refused():
    assert check(sign("old-secret", VECTOR_BODY), secrets=("new-secret",)) == "bad_signature"


@pytest.mark.parametrize(
    ("header", "sha1", "reason"),
    [
        (None, None, "missing_signature"),
        (None, "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59", "sha1_only"),
        ("", None, "malformed_signature"),
        ("sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59", None, "malformed_signature"),
        (VECTOR_HEADER[:-1], None, "malformed_signature"),  # truncated
        (VECTOR_HEADER + "0", None, "malformed_signature"),  # too long
        ("sha256=" + "é" * 64, None, "malformed_signature"),  # non-ASCII, right length in characters
        ("sha256=" + "0" * 64, None, "bad_signature"),  # forged
        (VECTOR_HEADER.replace("sha256=", "sha512="), None, "malformed_signature"),
    ],
)
def test_refusals(header, sha1, reason):
    assert check(header, sha1=sha1) == reason


def test_signature_covers_every_byte():
    assert check(VECTOR_HEADER, body=VECTOR_BODY + b" ") == "bad_signature"


def test_uppercase_hex_is_the_same_signature():
    assert check(VECTOR_HEADER.upper().replace("SHA256=", "sha256=")) is None
