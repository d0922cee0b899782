"""One writer per run directory: `run.lock`, holding the owner's pid and host.

The lock file is created with O_EXCL, so of two processes starting on one run
directory exactly one gets it. A lock left by a process that no longer runs
on this host (killed, crashed) is stale: it is taken over with a message. A
lock held from another host cannot be checked from here; `break_lock` takes
it over when the user knows that no process trains the run any more.
"""

import errno
import json
import os
import socket
from pathlib import Path

LOCK_FILE = "run.lock"


class RunLocked(OSError):
    """Another process holds the run directory's lock."""


class RunLock:
    """Context manager holding `run_dir/run.lock` for this process: `with RunLock(run_dir, log=print): ...`."""

    def __init__(self, run_dir, break_lock=False, log=print):
        self.path = Path(run_dir) / LOCK_FILE
        self.break_lock, self.log = break_lock, log
        self.owner = {"pid": os.getpid(), "host": socket.gethostname()}

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while not self._create():
            holder = self._holder()
            if holder is None:  # released between our attempt and the read
                continue
            if holder == self.owner:
                raise RunLocked(f"{self.path.parent} is already being trained by this process")
            if not (self.break_lock or self._stale(holder)):
                raise RunLocked(
                    f"{self.path.parent} is being trained by pid {holder.get('pid')} on {holder.get('host')} "
                    f"({self.path}); wait for it, or pass --break-lock if no process trains it any more"
                )
            self.log(f"taking over {self.path} from pid {holder.get('pid')} on {holder.get('host')}, which "
                     + ("no longer runs" if self._stale(holder) else "--break-lock overrides"))
            self.path.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc_info):
        if self._holder() == self.owner:
            self.path.unlink(missing_ok=True)

    def _create(self):
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w") as stream:
            json.dump(self.owner, stream)
        return True

    def _holder(self):
        """The lock file's owner, None when there is no lock file; an unreadable one counts as a dead owner."""
        try:
            holder = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            return {"pid": None, "host": self.owner["host"]}  # torn by a kill between create and write
        return holder if isinstance(holder, dict) else {"pid": None, "host": self.owner["host"]}

    def _stale(self, holder):
        """Whether the holder is a process of this host that no longer runs."""
        if holder.get("host") != self.owner["host"]:
            return False
        pid = holder.get("pid")
        if not isinstance(pid, int):
            return True
        try:
            os.kill(pid, 0)
        except OSError as error:
            return error.errno == errno.ESRCH
        return False
