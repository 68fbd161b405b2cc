"""A drill submitted by a command aborts when that command dies.

Through the long-lived runner the drill runs in the runner's process tree, not in the
``bcdrill run`` that submitted it. Ctrl-C in that command aborts the drill; so does its death
(``kill -9``, a closed terminal, a CI job cut short): nobody is left to see or stop the drill, so
it asks itself to abort, as ``bcdrill abort`` would, and reverts. The command is watched through
a pidfd, which a recycled pid cannot fool.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from engine.record.runstore import request_abort

BY = "runner"


@contextmanager
def abort_when_gone(client_pid: int | None, run_dir: Path) -> Iterator[None]:
    """While the drill of ``run_dir`` runs, abort it when process ``client_pid`` ends.

    The watch ends the moment the drill does (a pipe wakes it), not at a tick: the drill's
    summary, which the command waits for, is written after it."""
    if client_pid is None:
        yield
        return
    wake, woken = os.pipe()
    watch = threading.Thread(
        target=_watch, args=(client_pid, run_dir, wake), name="client-watch", daemon=True
    )
    watch.start()
    try:
        yield
    finally:
        os.close(woken)  # the watch sees its end of the pipe readable, and returns
        watch.join(timeout=1.0)


def _watch(client_pid: int, run_dir: Path, wake: int) -> None:
    try:
        try:
            pidfd = os.pidfd_open(client_pid)
        except OSError:  # already gone
            _abort(client_pid, run_dir)
            return
        try:
            ready, _, _ = select.select([pidfd, wake], [], [])
            if pidfd in ready and wake not in ready:
                _abort(client_pid, run_dir)
        finally:
            os.close(pidfd)
    finally:
        os.close(wake)


def _abort(client_pid: int, run_dir: Path) -> None:
    reason = f"the bcdrill run command that submitted the drill (pid {client_pid}) is gone"
    with suppress(OSError):  # the run folder is the drill's: if it cannot be written, neither can the journal
        request_abort(run_dir, reason, BY)


__all__ = ["abort_when_gone"]
