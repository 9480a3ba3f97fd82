"""convert --report: one self-contained page with players, mel images, links and settings."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from urllib.parse import unquote

import soundfile as sf
from typer.testing import CliRunner

from genreshift import report
from genreshift.cli import app
from helpers import write_tone

runner = CliRunner()


def _convert(tmp_path: Path, *extra: str):
    album = tmp_path / "album"
    write_tone(album / "a b.wav", 3.0, 44100, 2)
    write_tone(album / "sub" / "c.flac", 1.0, 48000, 1, format="FLAC")
    page = tmp_path / "pages" / "report.html"
    args = ["convert", str(album), "--to", "rock", "-o", str(tmp_path / "out"), "--report", str(page), *extra]
    return runner.invoke(app, args, catch_exceptions=False), page


def _check_page(page: Path) -> str:
    text = page.read_text()
    links = re.findall(r'href="([^"]+)"', text)
    assert len(links) == 4  # input and output of both files, relative to the page
    for href in links:
        assert not href.startswith(("/", "file:")) and (page.parent / unquote(href)).is_file(), href
    clips = re.findall(r'<audio[^>]+src="data:audio/ogg;base64,([^"]+)"', text)
    assert len(clips) == 4
    for clip in clips:
        data, rate = sf.read(io.BytesIO(base64.b64decode(clip)))
        assert len(data) > 0.5 * rate
    for key in ["genre", "batch size", "vocoder", "genreshift"]:
        assert f"<th>{key}</th>" in text
    assert "<td>rock</td>" in text
    return text


def test_report_with_players_images_links_and_settings(served, tmp_path):
    import pytest

    pytest.importorskip("matplotlib")
    result, page = _convert(tmp_path)
    assert result.exit_code == 0, result.output
    assert f"report: {page}" in result.output
    text = _check_page(page)
    images = re.findall(r'<img[^>]+src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 4 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)


def test_report_without_matplotlib_says_how_and_still_converts(served, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "matplotlib_available", lambda: False)
    result, page = _convert(tmp_path, "-q")
    assert result.exit_code == 0, result.output
    assert "pip install 'genreshift[report]'" in result.output
    assert (tmp_path / "out" / "a b.wav").is_file()
    text = _check_page(page)
    assert "<img" not in text and "genreshift[report]" in text
