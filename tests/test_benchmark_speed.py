"""benchmarks/speed.py --quick runs and prints its table (a smoke test, not a measurement).

About 40-85 s on a shared 2-core CPU (the host varies), so it stays in the default suite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "speed.py"


def test_speed_benchmark_quick(tmp_path):
    out = tmp_path / "speed.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--only", "long,album,stages", "--batches", "8,16", "--workdir", str(tmp_path),
         "--json", str(out), "--precision", "int8,float32"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| group | configuration |" in proc.stdout and "RANDOM weights" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    names = {r["name"] for r in rows}
    assert {"decode", "mel", "encode"} | {
        f"{s}, batch {b}" for s in ("translate", "vocode fast, int8", "vocode fast, float32") for b in (8, 16)
    } <= names
    assert {r["spec"]["int8"] for r in rows if r["name"].startswith("vocode fast")} == {True, False}
    # One call path (issue 22): the vocoder stage is convert's own, with the translator off.
    assert all("through convert" in r["note"] for r in rows if r["spec"]["op"] == "vocode")
    assert "device cpu" in proc.stdout and "peak GPU" not in proc.stdout
    assert any(n.startswith("4 x 3 s") for n in names)
    # Issue 22's album figure counts startup in: audio over (work + startup), not work alone.
    (album,) = [r for r in rows if r["group"] == "album"]
    assert album["name"].startswith("album: 3 x") and album["audio_s"] > 11.9
    (run,) = album["runs"]
    assert abs(album["rtf"] - album["audio_s"] / (run["wall"] + run["startup"])) < 1e-9
    assert album["rtf"] < album["audio_s"] / album["wall_s"]
    for r in rows:
        assert r["rss_mb"] > 50 and (r["spec"]["op"] == "idle" or r["wall_s"] > 0)
