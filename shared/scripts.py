"""Redis scripts live in ``.lua`` files beside the module that owns them.

A file is named after its owner and the script: ``shared/marks.create.lua`` belongs to
:mod:`shared.marks`. Its text is read once per process. Scripts are sent with ``EVAL``: Redis
caches them by their text, and unlike ``EVALSHA`` nothing fails when a restarted Redis has
forgotten them, inside a transaction or not (redis-py's registered scripts cost a ``SCRIPT EXISTS``
round trip before every pipeline).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from typing import Any

from shared import resp


@functools.cache
def script_text(package: str, name: str) -> str:
    """The text of ``<package>/<name>.lua``."""
    return resources.files(package).joinpath(f"{name}.lua").read_text(encoding="utf-8")


class LuaScript:
    """One script file, run on a client, a pipeline or an asyncio client (which returns an awaitable)."""

    def __init__(self, package: str, name: str) -> None:
        self.name = f"{package}/{name}.lua"
        self.text = script_text(package, name)
        self._encoded = self.text.encode()

    def __call__(self, client: Any, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        return client.eval(self.text, len(keys), *keys, *args)

    def packed(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> bytes:
        """The same call as wire bytes (:mod:`shared.resp`), for a caller that sends them itself."""
        return resp.command([b"EVAL", self._encoded, len(keys), *keys, *args])
