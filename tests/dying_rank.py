"""``genreshift`` for torchrun, except that on the first attempt rank 1 kills itself
(SIGKILL, no clean-up) right after it finished its first file: a crashed machine or an
out-of-memory kill in the middle of a library. Used by test_scale.py."""

import os
import signal

from genreshift import distrib
from genreshift.cli import app
from genreshift.pipeline import Converter

write = Converter._write


def write_then_die(self, seg, summed, weights):
    write(self, seg, summed, weights)
    first_attempt = distrib.rank() == 1 and not distrib.restarted()
    if first_attempt and seg.payload.planned.result.status == "converted":
        os.kill(os.getpid(), signal.SIGKILL)


Converter._write = write_then_die

app(prog_name="genreshift")
