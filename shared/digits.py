"""Numbers that come from outside as text (a header, a query parameter): ASCII digits only, and few
of them. ``str.isdigit`` alone also takes superscripts and other scripts' digits, which ``int()``
refuses (``²``) or reads (U+0661, an Arabic-Indic one, is 1), and ``int()`` refuses more than 4,300 digits."""

from __future__ import annotations

MAX_HOOK_ID_DIGITS = 20  # GitHub's hook ids: the receiver takes no longer, the reconciler reads none


def ascii_digits(text: str, most: int) -> bool:
    """``text`` is 1 to ``most`` ASCII digits."""
    return text.isascii() and text.isdigit() and len(text) <= most
