"""The exception the Python half of the script API raises into Lua."""

from __future__ import annotations

__all__ = ["ScriptError"]


class ScriptError(Exception):
    """An error raised into Lua by an API function. `kind`: "table" (Redis's
    luaPushError(text): {err="ERR text"}), "reply" (a command's error reply, parsed),
    "runtime" (a C function's Lua error, e.g. an argument error: the script's position
    is put in front, as luaL_error does)."""

    def __init__(self, text: bytes, kind: str = "table") -> None:
        super().__init__(text)
        self.text = text
        self.kind = kind
