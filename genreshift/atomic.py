"""Write files so that a crash never leaves half of one: a temp file beside the target,
renamed over it once complete. Used for audio, checkpoints, downloads, reports and caches."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_UMASK = os.umask(0o022)  # read once (umask can only be read by setting it) and put back
os.umask(_UMASK)


def temp_beside(path: Path, suffix: str = ".part") -> Path:
    """An empty hidden temp file in ``path``'s folder (created if needed), with the
    permissions a plain ``open`` would give: mkstemp makes 0600, and outputs are for sharing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    return Path(tmp)


@contextmanager
def replacing(path: Path, suffix: str = ".part") -> Iterator[Path]:
    """``with replacing(p) as tmp: write(tmp)`` - ``p`` appears only if the block succeeds."""
    tmp = temp_beside(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
