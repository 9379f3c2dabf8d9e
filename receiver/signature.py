"""GitHub's ``X-Hub-Signature-256``: ``sha256=`` + HMAC-SHA256(secret, raw body), hex.

Compared in constant time over bytes against every configured secret (rotation), without
stopping at the first match. A delivery carrying only the legacy SHA-1 header is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

PREFIX = b"sha256="
SIGNATURE_LENGTH = len(PREFIX) + 64
HEX = frozenset(b"0123456789abcdef")


def rejection_reason(
    body: bytes, signature_256: str | None, signature_sha1: str | None, secrets: Iterable[bytes]
) -> str | None:
    """None when the body is signed with one of ``secrets``, else why it is refused."""
    if signature_256 is None:
        return "sha1_only" if signature_sha1 is not None else "missing_signature"
    # headers are decoded as latin-1, so this gives back the bytes that were sent.
    given = signature_256.strip().encode("latin-1", "replace").lower()
    if (
        len(given) != SIGNATURE_LENGTH
        or not given.startswith(PREFIX)
        or not HEX.issuperset(given[len(PREFIX) :])
    ):
        return "malformed_signature"
    matched = False
    for secret in secrets:
        expected = PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest().encode("ascii")
        matched |= hmac.compare_digest(expected, given)
    return None if matched else "bad_signature"
