"""Server-sent events, split the way the protocol says: on "\\n" (and "\\r\\n") only.

httpx's ``aiter_lines()`` follows ``str.splitlines()``, which also breaks on U+2028, U+2029,
U+0085 and other characters a model may well emit inside a JSON string; the event would then be
cut in two and fail to parse. This decoder is fed raw text chunks, in whatever pieces the network
delivers them, and returns the ``data`` payload of each complete event.
"""

from __future__ import annotations

__all__ = ["SSEDecoder", "sse_events"]


class SSEDecoder:
    """Incremental SSE parser: ``feed(text)`` returns the events that chunk completed.

    An event ends at a blank line; several ``data:`` lines of one event are joined with "\\n"
    (the SSE rule). Comment lines (starting with ":") and other fields (``event:``, ``id:``,
    ``retry:``) are ignored: OpenAI-compatible servers put everything in ``data``.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._data: list[str] = []

    def feed(self, text: str) -> list[str]:
        self._buffer += text
        if "\n" not in self._buffer:
            return []
        *lines, self._buffer = self._buffer.split("\n")
        events: list[str] = []
        for line in lines:
            self._line(line.removesuffix("\r"), events)
        return events

    def flush(self) -> list[str]:
        """End of stream: a last event not followed by a blank line still counts."""
        events: list[str] = []
        if self._buffer:
            self._line(self._buffer.removesuffix("\r"), events)
            self._buffer = ""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[str]) -> None:
        if not line:
            if self._data:
                events.append("\n".join(self._data))
                self._data = []
            return
        if line.startswith(":"):
            return
        field, sep, value = line.partition(":")
        if field == "data":
            self._data.append(value.removeprefix(" ") if sep else "")


def sse_events(body: str) -> list[str]:
    """All event payloads of a complete SSE body (tests and non-streaming callers)."""
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.flush()
