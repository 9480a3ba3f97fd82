"""genreshift's exceptions, all children of ``GenreshiftError``, and the short reason that
ends a one-line error.

Each class carries the exit code the CLI gives it (as librosa's ``LibrosaError`` roots its
errors), so a command needs one ``except GenreshiftError``. The message is always one line
that names the file or option and says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path


class GenreshiftError(Exception):
    """Root of every error genreshift raises on purpose; ``exit_code`` is the CLI's."""

    exit_code = 1


class AudioError(GenreshiftError):
    """A track that cannot be read or written; the message names the file and the reason."""


class CheckpointError(GenreshiftError):
    """A weights file that cannot be used; the message names the file and the reason."""


class WeightsError(GenreshiftError):
    """Weights that cannot be found or trusted; the message says what to do."""


class ModelError(GenreshiftError):
    """A model that cannot be found or used; the message says why and what to do."""


class UnknownGenreError(ModelError):
    """--to names no installed or released genre (a usage error)."""

    exit_code = 2


class DeviceError(GenreshiftError):
    """A device that does not exist here, or that this run cannot use (a usage error)."""

    exit_code = 2


class TrainingError(GenreshiftError):
    """Bad input or state of a training run; the message is one line that says what to do."""


class Interrupted(GenreshiftError):
    """Ctrl-C during training: a checkpoint was saved; the message says where and how to continue."""

    exit_code = 130

    def __init__(self, step: int, saved: Path, forced: bool = False):
        if forced:  # a second Ctrl-C stopped a step halfway: its state is not saved
            where = f"{saved} holds step {step}" if step > 0 else "nothing was saved"
            super().__init__(f"stopped at once by a second interrupt; {where}; continue with --resume")
        else:
            super().__init__(f"interrupted at step {step}; saved {saved}; continue with --resume")


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
