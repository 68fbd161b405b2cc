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

_TICK_S = 0.2
BY = "runner"


@contextmanager
def abort_when_gone(client_pid: int | None, run_dir: Path) -> Iterator[None]:
    """While the drill of ``run_dir`` runs, abort it when process ``client_pid`` ends."""
    if client_pid is None:
        yield
        return
    stop = threading.Event()
    watch = threading.Thread(
        target=_watch, args=(client_pid, run_dir, stop), name="client-watch", daemon=True
    )
    watch.start()
    try:
        yield
    finally:
        stop.set()
        watch.join(timeout=1.0)


def _watch(client_pid: int, run_dir: Path, stop: threading.Event) -> None:
    try:
        pidfd = os.pidfd_open(client_pid)
    except OSError:  # already gone
        _abort(client_pid, run_dir)
        return
    try:
        while not stop.is_set():
            ready, _, _ = select.select([pidfd], [], [], _TICK_S)
            if ready and not stop.is_set():
                _abort(client_pid, run_dir)
                return
    finally:
        os.close(pidfd)


def _abort(client_pid: int, run_dir: Path) -> None:
    reason = f"the bcdrill run command that submitted the drill (pid {client_pid}) is gone"
    with suppress(OSError):  # the run folder is the drill's: if it cannot be written, neither can the journal
        request_abort(run_dir, reason, BY)


__all__ = ["abort_when_gone"]
