"""``genreshift convert ... --report report.html``: one self-contained page for listening.

For each converted file: players for a short excerpt of the input and of the output, their
log-mel spectrograms side by side, and links (relative to the page) to both whole files;
then every file that failed or was skipped, and the settings used. Excerpts and images are
embedded (base64 data URIs), so the page alone can be mailed or opened anywhere. Excerpts are Ogg Vorbis (about 20 times smaller than WAV); the images need
matplotlib, the optional extra ``genreshift[report]``: without it the page has the players
and says how to get the images.
"""

from __future__ import annotations

import base64
import html
import io
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np
import soundfile as sf
import torch

from . import __version__, audio
from .config import MelConfig
from .mel import log_mel, pad_for_mel
from .atomic import replacing

if TYPE_CHECKING:
    from .pipeline import Converter

EXCERPT_SECONDS = 10.0
MAX_FILES = 50  # players and images for this many files; the page stays a few tens of MB
_GENERATOR = '<meta name="generator" content="genreshift">'  # how a later run knows the page is ours
MISSING_MATPLOTLIB = "--report: mel spectrogram images need matplotlib: pip install 'genreshift[report]'"


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def settings_of(converter: Converter) -> dict[str, str]:
    """What a reader of the page needs to reproduce it."""
    o = converter.options
    return {
        "genreshift": __version__,
        "genre": converter.genre,
        "translator": converter.source.translator,
        "vocoder": converter.source.vocoder,
        "device": str(converter.device),
        "batch size": str(o.batch_size),
        "translator windows": f"{o.chunk_frames} frames, {o.overlap} shared",
        "channels": "each converted (--stereo)" if o.stereo else "mean of the channels",
        "segment": f"{o.segment_seconds:g} s",
        "output rate": f"{o.sample_rate} Hz" if o.sample_rate else "the input's",
        "output format": o.format or "the input's",
        **({"preview": _preview_setting(o.preview, o.preview_start)} if o.preview is not None else {}),
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _preview_setting(seconds: float, start: float | None) -> str:
    where = "its loudest stretch" if start is None else f"{start:g} s"
    return f"{seconds:g} s of each track, from {where}"


def report_path_problem(path: Path, inputs: list[Path], outputs: list[Path]) -> str | None:
    """Why the page may not be written at ``path``, or None: it must not be a file of the
    batch, and whatever is there already must be an earlier genreshift report."""
    try:
        key = path.resolve()
        if key in {Path(p).resolve() for p in inputs}:
            return "is an input of this conversion; choose another path"
        if key in {Path(p).resolve() for p in outputs}:
            return "is an output of this conversion; choose another path"
    except (OSError, RuntimeError):  # a symlink loop: nothing can be written there anyway
        return "cannot be resolved (a symlink loop?); choose another path"
    if path.is_dir():
        return "is a folder; give a file name such as report.html"
    if os.path.lexists(path) and not is_report(path):
        return "exists and is not a genreshift report; choose another path or remove the file"
    return None


def is_report(path: Path) -> bool:
    """Whether ``path`` is a page written by ``write_report`` (which may be replaced)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    return head.startswith(b"<!doctype html>") and (
        _GENERATOR.encode() in head or b"<title>genreshift report</title>" in head
    )


def excerpt_window(duration: float) -> tuple[float, float]:
    """(start, length) in seconds: from 30% into the track, where the music usually is."""
    length = min(EXCERPT_SECONDS, duration)
    return max(0.0, min(duration * 0.3, duration - length)), length


def _played(result) -> tuple[float, float, float]:
    """(where in the input, where in the output, length) of the players' excerpt, in seconds.
    A preview's output is its excerpt of the input, chosen already: the players start with it."""
    if result.excerpt is None:
        start, length = excerpt_window(result.duration)
        return start, start, length
    return result.excerpt[0], 0.0, min(EXCERPT_SECONDS, result.duration)


def _read(path: Path, start: float, length: float) -> tuple[np.ndarray, int]:
    info = sf.info(str(path))
    first = int(start * info.samplerate)
    data, rate = sf.read(
        str(path), start=first, frames=max(1, int(length * info.samplerate)), dtype="float32", always_2d=True
    )
    return data[:, :2], rate  # browsers play at most stereo anyway


def _audio_uri(data: np.ndarray, rate: int) -> str:
    """Ogg Vorbis where libsndfile writes it (rates up to 48 kHz), else 16-bit WAV."""
    if rate > 48000:
        data = audio.resample(torch.from_numpy(data.T.copy()), rate, 48000).T.numpy()
        rate = 48000
    buf = io.BytesIO()
    try:
        sf.write(buf, np.clip(data, -1, 1), rate, format="OGG", subtype="VORBIS")
        mime = "audio/ogg"
    except Exception:
        buf = io.BytesIO()
        sf.write(buf, data, rate, format="WAV", subtype="PCM_16")
        mime = "audio/wav"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode()}"


def _mel_uri(data: np.ndarray, rate: int, title: str, cfg: MelConfig) -> str:
    from matplotlib.figure import Figure

    wave = audio.resample(torch.from_numpy(data.mean(axis=1)), rate, cfg.sample_rate)
    mel = log_mel(pad_for_mel(wave, cfg)[0], cfg).numpy()
    fig = Figure(figsize=(6, 2.2), dpi=80)
    ax = fig.add_subplot()
    seconds = mel.shape[-1] * cfg.hop_length / cfg.sample_rate
    ax.imshow(
        mel,
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=cfg.silence_level,
        vmax=1.0,
        extent=(0, seconds, 0, cfg.n_mels),
    )
    ax.set(title=title, xlabel="seconds", ylabel="mel bin")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return f"data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"


def _link(path: Path, base: Path) -> str:
    """A link to a whole file, relative to the page, so the folder can be moved as a whole."""
    try:
        href = quote(Path(os.path.relpath(path.resolve(), base.resolve())).as_posix())
    except ValueError:  # another drive (Windows): no relative path exists
        href = path.resolve().as_uri()
    return f'<a href="{href}">{html.escape(str(path))}</a>'


def _file_section(result, images: bool, cfg: MelConfig, base: Path) -> str:
    at_input, at_output, length = _played(result)
    what = f"{result.duration:.1f} s"
    if result.excerpt is not None:
        what = f"preview of {result.excerpt[0]:.1f}&ndash;{result.excerpt[1]:.1f} s"
    parts = [f"<h2>{html.escape(str(result.source))}</h2>",
             f"<p>{what}: {_link(Path(result.source), base)} &rarr; {_link(Path(result.output), base)};"
             f" excerpt {at_input:.1f}&ndash;{at_input + length:.1f} s</p>",
             '<div class="pair">']  # fmt: skip
    for label, path, start in [("input", result.source, at_input), ("output", result.output, at_output)]:
        data, rate = _read(Path(path), start, length)
        parts.append(
            f'<figure><figcaption>{label}</figcaption><audio controls preload="none" src="{_audio_uri(data, rate)}"></audio>'
        )
        if images:
            parts.append(f'<img alt="{label} log-mel spectrogram" src="{_mel_uri(data, rate, label, cfg)}">')
        parts.append("</figure>")
    parts.append("</div>")
    return "\n".join(parts)


def write_report(path: Path, results: list, settings: dict[str, str], cfg: MelConfig | None = None) -> Path:
    """Write the page atomically; returns its path. ``results`` are pipeline TrackResults."""
    cfg = cfg or MelConfig()
    images = matplotlib_available()
    converted = [r for r in results if r.status == "converted"]
    body = [f"<h1>genreshift: {html.escape(settings.get('genre', ''))}</h1>",
            f"<p>{len(converted)} of {len(results)} file(s) converted.</p>"]  # fmt: skip
    if not images:
        body.append(f'<p class="note">{html.escape(MISSING_MATPLOTLIB)}</p>')
    for r in converted[:MAX_FILES]:
        body.append(_file_section(r, images, cfg, path.parent))
    if len(converted) > MAX_FILES:
        body.append(
            f"<p>{len(converted) - MAX_FILES} more converted file(s) not shown (the page shows {MAX_FILES}).</p>"
        )
    others = [r for r in results if r.status != "converted"]
    if others:
        rows = "".join(
            f"<tr><td>{html.escape(str(r.source))}</td><td>{r.status}</td><td>{html.escape(r.message)}</td></tr>"
            for r in others
        )
        body.append(f"<h2>Not converted</h2><table><tr><th>file</th><th>status</th><th>reason</th></tr>{rows}</table>")
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in settings.items())
    body.append(f"<h2>Settings</h2><table>{rows}</table>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{_GENERATOR}<title>genreshift report</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:auto;padding:1em}} .pair{{display:flex;gap:1em;flex-wrap:wrap}}
figure{{margin:0}} audio{{width:480px;display:block}} th{{text-align:left;padding-right:1em}} .note{{color:#a40}}</style>
</head><body>
{chr(10).join(body)}
</body></html>
"""
    with replacing(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
