"""Turning a library's exception into the short reason that ends a one-line error."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path


def short_reason(exc: BaseException, last_line: bool = False) -> str:
    """One line of ``exc``'s message, at most 200 characters, or its type if it has none.

    ``last_line`` is for libsndfile, whose messages put the useful part last; torch and
    network errors put it first.
    """
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    return (lines[-1] if last_line else lines[0])[:200]


# errno names for the failures a user can act on; anything else keeps the OS's own words.
_PLAIN = {"ENOSPC": "disk full", "EDQUOT": "disk quota exceeded", "EACCES": "permission denied",
          "EPERM": "permission denied", "EROFS": "read-only file system"}  # fmt: skip


def write_reason(exc: BaseException, folder: Path) -> str:
    """Why writing into ``folder`` failed, in words a user can act on.

    libsndfile reports a full disk or a denied open as "System error" and drops the errno;
    then a small probe write into the same folder tells what happened.
    """
    if isinstance(exc, OSError) and exc.errno is not None:
        return _PLAIN.get(errno.errorcode.get(exc.errno, ""), exc.strerror or str(exc))
    probed = _probe(folder)
    return probed or short_reason(exc, last_line=True)


def _probe(folder: Path) -> str | None:
    try:
        fd, name = tempfile.mkstemp(prefix=".genreshift-probe-", dir=folder)
    except OSError as exc:
        return write_reason(exc, folder)
    try:
        os.write(fd, b"\0" * 65536)  # more than a full disk's last free block
        os.fsync(fd)
    except OSError as exc:
        return write_reason(exc, folder)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(name)
    return "disk full" if shutil.disk_usage(folder).free < 1 << 20 else None
