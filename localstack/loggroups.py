"""Local log groups shaped like CloudWatch's: what a function prints goes to its own group.

On AWS, whatever a function writes to stdout (Powertools' JSON lines, EMF
metrics) lands in the log group ``/aws/lambda/<function>``, one log stream
per execution environment. Locally one runner process hosts several
functions, so its stdout is replaced by a router: a line printed during an
invocation (``chalicelib.observability.current_function()``) is appended to

    <LOCAL_LOG_DIR>/aws/lambda/<function>/<stream>.log

where the stream is the process (``api``, ``worker-1``...). Anything printed
outside an invocation (the runner's own notes) goes to the process's own log,
as before. Without ``LOCAL_LOG_DIR`` nothing changes.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from pathlib import Path
from typing import TextIO

ENV = "LOCAL_LOG_DIR"
GROUPS = Path("aws") / "lambda"


def group_dir(logs: Path, function: str) -> Path:
    """The folder of log group ``/aws/lambda/<function>`` under ``logs``."""
    return logs / GROUPS / function


class LogGroupRouter(io.TextIOBase):
    """A stdout that files whole lines by the function running on the writing thread."""

    def __init__(self, logs: Path, stream: str, fallback: TextIO) -> None:
        self._logs = logs
        self._stream = stream
        self._fallback = fallback
        self._local = threading.local()
        self._files: dict[str, TextIO] = {}
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        # print() writes the text and the newline separately: keep whole lines together.
        pending = getattr(self._local, "pending", "") + text
        *lines, self._local.pending = pending.split("\n")
        if lines:
            self._emit("".join(f"{line}\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        self._fallback.flush()

    def _emit(self, lines: str) -> None:
        observability = sys.modules.get("chalicelib.observability")
        function = observability.current_function() if observability else None
        with self._lock:
            if function is None:
                self._fallback.write(lines)
                self._fallback.flush()
                return
            out = self._files.get(function)
            if out is None:
                folder = group_dir(self._logs, function)
                folder.mkdir(parents=True, exist_ok=True)
                out = self._files[function] = open(  # noqa: SIM115 - kept open for the process
                    folder / f"{self._stream}.log", "a", encoding="utf-8")
            out.write(lines)
            out.flush()


def install(stream: str) -> bool:
    """Route this process's stdout into log groups, if ``LOCAL_LOG_DIR`` is set.

    Call it before ``app`` is imported: the Powertools logger keeps the stdout
    it finds when it is built.
    """
    logs = os.environ.get(ENV)
    if not logs:
        return False
    sys.stdout = LogGroupRouter(Path(logs), stream, sys.stdout)
    return True
