"""Shared test helpers: tiny random-weight models, generated audio, a local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from genreshift import checkpoint
from genreshift.config import FastVocoderConfig, MelConfig, MelGANConfig, TranslatorConfig
from genreshift.translator import Generator
from genreshift.vocoder import FastVocoder, MelGAN

TINY_TRANSLATOR = TranslatorConfig(channels=16, n_blocks=2, kernel_size=3, window_frames=32)
TINY_FAST = FastVocoderConfig(dim=16, intermediate_dim=32, n_blocks=1)
TINY_MELGAN = MelGANConfig(ngf=4, n_residual_layers=2)


def tiny_translator(genre: str, seed: int = 0, vocoder: str | None = "fast") -> checkpoint.Checkpoint:
    torch.manual_seed(seed)
    g = Generator(TINY_TRANSLATOR)
    nn.init.normal_(g.out[1].weight, std=0.02)  # not identity, so the model really acts
    return checkpoint.Checkpoint(
        "translator", "travelgan", TINY_TRANSLATOR, MelConfig(), g.state_dict(), genres=[genre], vocoder=vocoder
    )


def tiny_vocoder(arch: str = "fast", seed: int = 0) -> checkpoint.Checkpoint:
    torch.manual_seed(seed)
    cfg, cls = (TINY_FAST, FastVocoder) if arch == "fast" else (TINY_MELGAN, MelGAN)
    return checkpoint.Checkpoint("vocoder", arch, cfg, MelConfig(), cls(cfg).state_dict())


def registry_row(path: Path, model: str, kind: str, **extra) -> dict:
    data = path.read_bytes()
    return {"model": model, "file": path.name, "kind": kind, "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data), **extra}  # fmt: skip


def build_weights(folder: Path, genres=("rock", "orchestral")) -> Path:
    """Tiny weights for ``genres`` plus a fast vocoder in ``folder``; returns registry.json."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    checkpoint.save(tiny_vocoder("fast"), folder / "fast-tiny.pt", half=True)
    rows.append(registry_row(folder / "fast-tiny.pt", "fast", "vocoder"))
    for i, genre in enumerate(genres):
        checkpoint.save(tiny_translator(genre, seed=i), folder / f"{genre}-tiny.pt", half=True)
        rows.append(registry_row(folder / f"{genre}-tiny.pt", genre, "translator", genre=genre, vocoder="fast"))
    registry = folder / "registry.json"
    registry.write_text(json.dumps({"version": 1, "files": rows}, indent=1))
    return registry


def write_tone(path: Path, seconds: float = 1.0, rate: int = 22050, channels: int = 1, **kwargs) -> Path:
    """A few harmonics with a little noise, so every stage has something to chew on."""
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    rng = np.random.default_rng(len(path.name))
    mono = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 660 * t) + 0.01 * rng.standard_normal(n)
    data = np.stack([mono * (1 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, **kwargs)
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class LocalServer:
    """A 127.0.0.1 HTTP server over ``folder``; counts the requests it serves."""

    def __init__(self, folder: Path):
        self.requests: list[str] = []
        server = self

        class Handler(_QuietHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def sigterm_once(args: list, temp_files: int, out: Path) -> subprocess.CompletedProcess:
    """``python -m genreshift ARGS`` in a child process, sent SIGTERM as soon as ``out``
    holds ``temp_files`` temp files (outputs being written); returns how it ended. Fails the
    test if the run ends before that."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "genreshift", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 180
    while len(list(out.glob(".*.part"))) < temp_files and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.fail(f"finished before {temp_files} temp file(s) were seen: {proc.communicate()}")
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
