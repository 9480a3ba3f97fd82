"""Write files so that a crash never leaves half of one: a temp file beside the target,
renamed over it once complete. Used for audio, checkpoints, downloads, reports and caches.

A temp file is locked (``flock``) while it is being written, so a later run can tell the
leftovers of a killed run (no lock) from the files of a run still at work, and remove only
the former (``remove_stale``).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows: no flock; stale files are told by their age alone
    fcntl = None  # type: ignore[assignment]

_UMASK = os.umask(0o022)  # read once (umask can only be read by setting it) and put back
os.umask(_UMASK)

# mkstemp names: prefix + 8 characters of [a-z0-9_] + suffix; ours are ".<target name>.XXXXXXXX.part".
_TEMP_NAME = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}(?P<suffix>\.part|\.tmp)")
# A temp file younger than this is never removed: it may have been created a moment ago by
# a run that has not locked it yet.
FRESH_SECONDS = 60.0
# Without flock (Windows) a temp file is taken for stale only after a day untouched.
UNLOCKED_STALE_SECONDS = 24 * 3600.0


def temp_beside(path: Path, suffix: str = ".part") -> Path:
    """An empty hidden temp file in ``path``'s folder (created if needed), with the
    permissions a plain ``open`` would give: mkstemp makes 0600, and outputs are for sharing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    return Path(tmp)


class TempLock:
    """An exclusive lock on a temp file for as long as this process writes it; a killed
    process loses it, which is how ``remove_stale`` knows the file is a leftover."""

    def __init__(self, path: Path):
        self.fd: int | None = None
        if fcntl is None:
            return
        try:
            self.fd = os.open(path, os.O_RDWR)
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.release()  # a file system without locks: the file is still written, only unlocked

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the lock
            self.fd = None


@contextmanager
def replacing(path: Path, suffix: str = ".part") -> Iterator[Path]:
    """``with replacing(p) as tmp: write(tmp)`` - ``p`` appears only if the block succeeds."""
    tmp = temp_beside(path, suffix)
    lock = TempLock(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        lock.release()


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of the temp file names ``temp_beside`` gives."""
    return _TEMP_NAME.fullmatch(name) is not None


def _held_by_someone(path: Path) -> bool:
    if fcntl is None:
        return False  # nothing to ask; remove_stale went by the file's age
    try:
        fd = os.open(path, os.O_RDWR)  # NFS grants an exclusive lock only on a writable descriptor
    except OSError:
        return True  # cannot even look: leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops the lock just taken


def remove_stale(root: Path, now: float | None = None) -> list[Path]:
    """Delete the temp files of genreshift's own naming below ``root`` that no running
    process is writing (left by a killed or crashed run); returns what was removed.

    Files of another name are never touched, nor temp files younger than FRESH_SECONDS,
    nor (where flock exists) locked ones, so a second run writing into the same folder keeps
    its files. Unreadable folders are passed over.
    """
    now = time.time() if now is None else now
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if not is_temp_name(name):
                continue
            path = Path(dirpath) / name
            try:
                age = now - path.lstat().st_mtime
                if not path.is_file() or path.is_symlink():
                    continue
            except OSError:
                continue
            if age < FRESH_SECONDS or (fcntl is None and age < UNLOCKED_STALE_SECONDS):
                continue
            if _held_by_someone(path):
                continue
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass  # gone meanwhile, or not ours to delete: either way nothing to do
    return removed
