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


def test_repeats_run_in_rounds_over_every_configuration(tmp_path, monkeypatch):
    """The VM drifts over minutes: a configuration's repeats must not all land in one stretch."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("speed_benchmark", SCRIPT)
    speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(speed)
    order = []

    def fake_run(config):
        order.append(config["vocoder"])
        wall = 100.0 if config["vocoder"] == "slow" else 1.0 + len(order)  # "slow" is over a minute
        return {"wall": wall, "startup": 1.0, "audio": 240.0, "rss_mb": 900.0}

    monkeypatch.setattr(speed, "run_one", fake_run)
    base = {"op": "convert", "group": "e2e"}
    configs = [{**base, "name": f"convert, {v}", "vocoder": v} for v in ("v3", "v2", "slow")]
    configs.append({**base, "group": "album", "name": "the v3 row again", "vocoder": "v3"})
    rows = speed.measure(configs, repeats=3, out_dir=tmp_path)
    assert order == ["v3", "v2", "slow", "v3", "v2", "v3", "v2"]  # rounds; the slow one once; no duplicate work
    assert [len(r["runs"]) for r in rows] == [3, 3, 1, 3]
    assert rows[0]["wall_s"] == 5.0 and rows[1]["wall_s"] == 6.0  # medians of (2, 5, 7) and (3, 6, 8)
    assert rows[3]["group"] == "album" and rows[3]["runs"] is rows[0]["runs"] and "(1 run)" in rows[2]["note"]
