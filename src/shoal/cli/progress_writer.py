"""How converge progress is drawn: task states in their order, and jsonmessage's rendering of
progress lines (redrawn in place on a terminal, one line each otherwise), shared by the
service and the job progress."""

from __future__ import annotations

import os
from typing import TextIO

STATE_ORDER = {
    "new": 1,
    "allocated": 2,
    "pending": 3,
    "assigned": 4,
    "accepted": 5,
    "preparing": 6,
    "ready": 7,
    "starting": 8,
    "running": 9,
    "complete": 10,
    "shutdown": 11,
    "failed": 12,
    "rejected": 13,
}
RUNNING = STATE_ORDER["running"]
MAX_PROGRESS = 9
MAX_PROGRESS_BARS = 20
# the widest state a task line can show: every non-terminal state, and "complete"
LONGEST_STATE = max(len(s) for s, n in STATE_ORDER.items() if n <= RUNNING or s == "complete")


def terminal(state: str) -> bool:
    return STATE_ORDER.get(state, 0) > RUNNING


def trunc_error(message: str) -> str:
    message = message.replace("\n", " ")
    return message[:74] + "…" if len(message) > 75 else message


class ProgressWriter:
    """jsonmessage's rendering of progress messages, one line per ID."""

    def __init__(self, stream: TextIO, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty()
        self.width = self._terminal_width() if self.tty else 0
        self.lines: dict[str, int] = {}

    def _terminal_width(self) -> int:
        # The terminal's own size, as Docker asks for it (not $COLUMNS).
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 0

    def write(self, ident: str, action: str, current: int = 0, total: int = 0) -> None:
        if self.quiet:
            return
        if not self.tty:
            if total:  # bars are for terminals only
                return
            self.stream.write(f"{ident}: {action}\n")
            self.stream.flush()
            return
        if ident not in self.lines:
            self.lines[ident] = len(self.lines)
            self.stream.write("\n")
        diff = len(self.lines) - self.lines[ident]
        bar = self._bar(current, total)
        self.stream.write(f"\x1b[{diff}A\x1b[2K\r{ident}: {action} {bar}\r\x1b[{diff}B")
        self.stream.flush()

    def _bar(self, current: int, total: int) -> str:
        if total <= 0 or self.width <= 110:
            return ""
        filled = min(50, int(current / total * 100) // 2)
        return f"[{'=' * filled}>{' ' * (50 - filled)}] "

    def message(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(text + "\n")
            self.stream.flush()
