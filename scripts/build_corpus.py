#!/usr/bin/env python3
"""Build the genreshift training corpus from free-licensed music in Debian.

The music comes from Debian game-data packages (fetched with ``apt-get
download`` and unpacked with ``dpkg -x``, so no root install is needed).
Every track is written as mono 16-bit FLAC at 22050 Hz to
``<out>/<genre>/<package>/<track>.flac`` and described in
``<out>/manifest.json`` and ``<out>/manifest.csv``.

Usage::

    python scripts/build_corpus.py --out /work/corpus \
        [--cache ~/.cache/genreshift-corpus] [--holdout 3] [--max-seconds N]

Downloads and extractions are cached, so a rerun only re-encodes.  This
script is deliberately standalone (stdlib + numpy + soundfile only) and does
not import the genreshift package.  See docs/corpus.md.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import math
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

try:
    import numpy as np
    import soundfile as sf
except ImportError as exc:  # one clear line instead of a traceback
    sys.exit(f"error: {exc.name} is required: pip install numpy soundfile")

SAMPLE_RATE = 22050
MIN_SECONDS = 5.0
# Quieter than this (RMS, dBFS) is treated as silence, not music.
SILENCE_DBFS = -60.0
# Mixed stems and resampler overshoot can exceed full scale; FLAC PCM_16
# would clip, so such tracks are scaled down to this peak.
PEAK_CEILING = 0.99
AUDIO_SUFFIXES = {".ogg", ".opus", ".flac", ".wav", ".mp3"}
# Frets on Fire song folders may hold a short "preview" clip and a "crowd"
# cheering track; neither is part of the song's mix.
NON_MIX_STEMS = ("preview", "crowd")


@dataclass(frozen=True)
class Source:
    """Where one package keeps its music and how to turn it into tracks.

    kind is "files" (each matching file is a track) or "stems" (each
    matching folder is a song whose audio files are summed into one mix).
    archive, if set, is a zip inside the package whose members are
    extracted first; root and patterns are then relative to the zip.
    """

    genre: str
    package: str
    kind: str
    root: str
    patterns: tuple[str, ...]
    archive: str | None = None
    # Path components dropped from track names (e.g. Warzone's "albums").
    drop_dirs: tuple[str, ...] = ()
    # Track name -> reason it is not music that belongs in the corpus.
    exclude: dict[str, str] = field(default_factory=dict)


SOURCES = (
    Source("rock", "fretsonfire-songs-muldjord", "stems", "usr/share/games/fretsonfire/data/songs/muldjord", ("*/",)),
    Source("rock", "fretsonfire-songs-sectoid", "stems", "usr/share/games/fretsonfire/data/songs/sectoid", ("*/",)),
    Source(
        "orchestral",
        "wesnoth-1.16-music",
        "files",
        "usr/share/games/wesnoth/1.16/data/core/music",
        ("*.ogg",),
        exclude={"silence": "10 s of near-silence used as a pause"},
    ),
    Source(
        "electronic",
        "nexuiz-music",
        "files",
        "sound/cdtracks",
        ("*.ogg",),
        archive="usr/share/games/nexuiz/data/music.pk3",
        exclude={"thunder": "thunder sound effect (11025 Hz), not music"},
    ),
    Source(
        "electronic",
        "warzone2100-music",
        "files",
        "usr/share/games/warzone2100/music",
        ("*.opus", "albums/*/*.opus"),
        drop_dirs=("albums",),
    ),
)


class SkipError(Exception):
    """A package or file that cannot be used: an error, reported in one line."""


class Rejected(Exception):
    """A readable track that is not kept (too short, silent): not an error."""


@dataclass
class Track:
    """One output track: its name and the source file(s) it is made from."""

    name: str
    files: list[Path]
    sources: list[str]  # as recorded in the manifest


# --------------------------------------------------------------------------
# Package download and extraction


def run(cmd: list[str], cwd: Path | None = None) -> str:
    """Run a command, returning stdout; raise SkipError with its last error."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("E:")] or lines or ["no output"]
        raise SkipError(f"{' '.join(cmd[:2])} failed: {errors[-1].strip()}")
    return proc.stdout


def fetch_deb(package: str, cache: Path) -> Path:
    """Return the package's .deb in the cache, downloading it if absent."""
    debs_dir = cache / "debs"
    debs_dir.mkdir(parents=True, exist_ok=True)
    found = sorted(debs_dir.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
    if not found:
        print(f"  downloading {package} ...", flush=True)
        try:
            run(["apt-get", "download", package], cwd=debs_dir)
        except SkipError as exc:
            hint = " (is 'apt-get update' needed?)" if "Unable to locate" in str(exc) else ""
            raise SkipError(f"{exc}{hint}") from None
        found = sorted(debs_dir.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise SkipError(f"apt-get download {package} produced no .deb")
    return found[-1]


def deb_version(deb: Path) -> str:
    """The Version field of a .deb (with epoch, unlike its file name)."""
    return run(["dpkg-deb", "-f", str(deb), "Version"]).strip()


def extract_deb(deb: Path, package: str, version: str, cache: Path) -> Path:
    """Unpack a .deb once into the cache and return the unpacked tree."""
    dest = cache / "extract" / f"{package}_{version.replace(':', '%3a')}"
    if not dest.is_dir():
        # Unpack beside dest and rename, so an interrupted run never leaves a
        # half-unpacked tree that a rerun would mistake for a complete one.
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        run(["dpkg", "-x", str(deb), str(tmp)])
        tmp.rename(dest)
    return dest


def extract_zip(archive: Path) -> Path:
    """Unpack a zip (e.g. a Quake .pk3) once, next to itself."""
    dest = archive.with_name(archive.name + ".d")
    if not dest.is_dir():
        tmp = archive.with_name(archive.name + ".d.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        except (zipfile.BadZipFile, OSError) as exc:
            raise SkipError(f"cannot unzip {archive.name}: {exc}") from None
        tmp.rename(dest)
    return dest


# --------------------------------------------------------------------------
# Licenses


def read_license(pkg_root: Path, package: str, sample_path: str) -> str:
    """A short license string for a package's music, from its copyright file.

    Machine-readable (DEP-5) files: the License of the last Files stanza
    matching sample_path (DEP-5's own rule; "Files: *" matches everything).
    Free-form files: the first well-known license text found before the
    Debian packaging section, else the first non-empty "License:" line.
    """
    path = pkg_root / "usr/share/doc" / package / "copyright"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown (no copyright file)"
    if text.startswith("Format:"):
        return _dep5_license(text, sample_path)
    return _freeform_license(text)


def _dep5_license(text: str, sample_path: str) -> str:
    """License of the last DEP-5 Files stanza matching sample_path."""
    found = "unknown"
    for stanza in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", stanza, re.M)
        lic = re.search(r"^License:[ \t]*(.+)", stanza, re.M)
        if files and lic and any(fnmatch.fnmatch(sample_path, pat) for pat in files.group(1).split()):
            found = lic.group(1).strip()
    return found


# Phrases that identify a license in free-form copyright files.
_LICENSE_PHRASES = (
    ("CC-BY-SA-3.0", r"creative\s+commons\s+attribution[\s-]*share[\s-]*alike\W+(?:licen[cs]e\W+)?3\.0"),
    ("GPL-2+", r"GNU\s+General\s+Public\s+License.{0,120}?version\s+2.{0,60}?later\s+version"),
    ("GPL-2", r"GNU\s+General\s+Public\s+License.{0,60}?version\s+2"),
    ("Expat", r"Permission\s+is\s+hereby\s+granted,\s+free\s+of\s+charge"),
)


def _freeform_license(text: str) -> str:
    """First recognised license phrase (earliest in the file) or License: line."""
    # The packaging's own license (e.g. Apache-2.0 for debian/) is not the
    # music's, so stop reading where the packaging section starts.
    cut = re.search(r"^\s*Packaging:|The Debian packaging is", text, re.M)
    body = text[: cut.start()] if cut else text
    hits = []
    for rank, (name, pattern) in enumerate(_LICENSE_PHRASES):
        match = re.search(pattern, body, re.I | re.S)
        if match:
            # On a tie (GPL-2+ and GPL-2 start alike) the more specific,
            # earlier-listed phrase wins.
            hits.append((match.start(), rank, name))
    if hits:
        return min(hits)[2]
    line = re.search(r"^License:[ \t]*(\S.*)", body, re.M)
    return line.group(1).strip() if line else "see copyright file"


# --------------------------------------------------------------------------
# Track discovery


def track_name(rel: Path, drop_dirs: tuple[str, ...]) -> str:
    """A file-system-safe track name from a path relative to the music root."""
    parts = [p for p in rel.with_suffix("").parts if p not in drop_dirs]
    name = "-".join(parts).lower()
    return re.sub(r"[^a-z0-9._-]+", "_", name).strip("_.")


def is_audio(path: Path) -> bool:
    """True for audio files; song.ini, notes.mid, label.png etc. are not."""
    return path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES


def find_tracks(src: Source, pkg_root: Path) -> list[Track]:
    """List the tracks of one source, in name order."""
    base = pkg_root
    prefix = ""
    if src.archive:
        base = extract_zip(pkg_root / src.archive)
        prefix = f"{src.archive}:"  # manifest shows the member inside the zip
    root = base / src.root
    if not root.is_dir():
        raise SkipError(f"no music folder {src.root}")
    tracks = []
    for pattern in src.patterns:
        for hit in sorted(root.glob(pattern)):
            if src.kind == "stems":
                files = [
                    p for p in sorted(hit.iterdir()) if is_audio(p) and not p.stem.lower().startswith(NON_MIX_STEMS)
                ]
            else:
                files = [hit] if is_audio(hit) else []
            if not files:
                continue
            name = track_name(hit.relative_to(root), src.drop_dirs)
            if name in src.exclude:
                print(f"  skip {name}: {src.exclude[name]}")
                continue
            sources = [prefix + str(f.relative_to(base)) for f in files]
            tracks.append(Track(name, files, sources))
    return sorted(tracks, key=lambda t: t.name)


# --------------------------------------------------------------------------
# Audio


def opus_supported() -> bool:
    """libsndfile reads Ogg Opus from 1.0.29 on; older builds cannot."""
    return "OPUS" in sf.available_subtypes("OGG")


def read_mono(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """Decode a file (optionally only its start) and average it to mono."""
    try:
        with sf.SoundFile(str(path)) as f:
            frames = f.frames
            if max_seconds is not None:
                frames = min(frames, int(max_seconds * f.samplerate))
            data = f.read(frames, dtype="float32", always_2d=True)
            return data.mean(axis=1), f.samplerate
    except (RuntimeError, OSError, ValueError) as exc:
        raise SkipError(read_error(path, exc)) from None


def read_error(path: Path, exc: Exception) -> str:
    """One-line reason, without libsndfile's repeat of the full path."""
    reason = str(exc).split("': ")[-1]
    return f"cannot read {path.name}: {reason}"


def source_seconds(path: Path) -> float:
    """Duration from the file header, without decoding."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError, ValueError) as exc:
        raise SkipError(read_error(path, exc)) from None
    return info.frames / info.samplerate


def design_lowpass(
    up: int, down: int, zero_crossings: int = 32, rolloff: float = 0.95, beta: float = 8.6
) -> tuple[np.ndarray, int]:
    """Kaiser-windowed sinc lowpass for resampling by up/down.

    It runs at the upsampled rate and cuts at rolloff * the lower Nyquist
    frequency.  32 zero crossings with beta 8.6 give about -90 dB stopband
    and a flat passband to ~0.9 Nyquist, plenty for log-mel features.
    Returns the filter (gain `up`, to undo zero stuffing) and its half length.
    """
    widest = max(up, down)
    cutoff = rolloff / (2 * widest)  # cycles per upsampled sample
    half = int(math.ceil(zero_crossings * widest / rolloff))
    t = np.arange(-half, half + 1, dtype=np.float64)
    taps = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(2 * half + 1, beta)
    return taps * up, half


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase windowed-sinc resampling of a 1-D signal (numpy only).

    Output sample n sits at input time n * down / up.  Writing
    n * down = q * up + r, it is sum_k x[q - k] * h[k * up + r]: for each of
    the `up` phases r the taps are fixed and q steps by `down`, so a phase is
    one matrix product of a strided window view with its taps.
    """
    g = math.gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    if up == down:
        return x.astype(np.float32)
    h, half = design_lowpass(up, down)
    reach = half // up + 1  # input samples on each side of q
    k = np.arange(-reach, reach + 1)
    n_out = -(-len(x) * up // down)
    padded = np.zeros(len(x) + 2 * reach + down + 1, dtype=np.float32)
    padded[reach : reach + len(x)] = x
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1)
    y = np.empty(n_out, dtype=np.float32)
    for n0 in range(min(up, n_out)):
        r, q0 = n0 * down % up, n0 * down // up
        idx = k * up + r + half
        inside = (idx >= 0) & (idx < len(h))
        # Reversed because windows run forward in x while k runs backward.
        taps = np.where(inside, h[np.clip(idx, 0, len(h) - 1)], 0.0)[::-1]
        count = -(-(n_out - n0) // up)
        y[n0::up] = windows[q0 : q0 + (count - 1) * down + 1 : down] @ taps.astype(np.float32)
    return y


def mix(parts: list[np.ndarray]) -> np.ndarray:
    """Sum stems, padding the shorter ones with silence."""
    out = np.zeros(max(len(p) for p in parts), dtype=np.float32)
    for p in parts:
        out[: len(p)] += p
    return out


def render(track: Track, max_seconds: float | None) -> np.ndarray:
    """Decode, resample and mix a track's files into 22050 Hz mono."""
    longest = max(source_seconds(f) for f in track.files)
    if longest < MIN_SECONDS:
        raise Rejected(f"{longest:.1f} s is shorter than {MIN_SECONDS:g} s")
    parts = []
    for path in track.files:
        audio, sr = read_mono(path, max_seconds)
        parts.append(resample(audio, sr, SAMPLE_RATE))
    audio = mix(parts)
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    if rms == 0 or 20 * math.log10(rms) < SILENCE_DBFS:
        raise Rejected(f"near-silent (RMS below {SILENCE_DBFS:g} dBFS)")
    peak = float(np.max(np.abs(audio)))
    if peak > PEAK_CEILING:
        audio *= PEAK_CEILING / peak
    return audio


def write_flac(path: Path, audio: np.ndarray) -> None:
    """Write mono 16-bit FLAC atomically (no truncated files on interrupt)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    sf.write(str(tmp), audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    tmp.replace(path)


# --------------------------------------------------------------------------
# Corpus


def build_package(src: Source, cache: Path, out: Path, max_seconds: float | None) -> tuple[list[dict], int]:
    """Fetch one package and write its tracks; return entries and error count."""
    print(f"{src.genre}: {src.package}", flush=True)
    deb = fetch_deb(src.package, cache)
    version = deb_version(deb)
    pkg_root = extract_deb(deb, src.package, version, cache)
    tracks = find_tracks(src, pkg_root)
    if any(f.suffix.lower() == ".opus" for t in tracks for f in t.files) and not opus_supported():
        raise SkipError(f"this libsndfile ({sf.__libsndfile_version__}) cannot read Ogg Opus (needs >= 1.0.29)")
    license_ = read_license(pkg_root, src.package, tracks[0].sources[0] if tracks else src.root)
    entries, errors = [], 0
    for track in tracks:
        rel = Path(src.genre) / src.package / f"{track.name}.flac"
        try:
            audio = render(track, max_seconds)
        except Rejected as exc:
            print(f"  skip {track.name}: {exc}")
            continue
        except SkipError as exc:
            print(f"error: {src.package}/{track.name}: {exc}; skipped", file=sys.stderr)
            errors += 1
            continue
        write_flac(out / rel, audio)
        entries.append(
            {
                "path": rel.as_posix(),
                "genre": src.genre,
                "package": src.package,
                "package_version": version,
                "source": track.sources,
                "duration_s": round(len(audio) / SAMPLE_RATE, 3),
                "license": license_,
                "split": "train",
            }
        )
    print(f"  {len(entries)} tracks, license {license_}", flush=True)
    return entries, errors


def assign_splits(entries: list[dict], holdout: int) -> None:
    """Mark the last `holdout` tracks of each genre, by track name, as val.

    Sorting by the file name (not package/name) mixes packages, so a
    genre's validation set is not just the alphabetically last package.
    """
    for genre in {e["genre"] for e in entries}:
        ranked = sorted((e for e in entries if e["genre"] == genre), key=lambda e: (Path(e["path"]).name, e["package"]))
        for entry in ranked[max(0, len(ranked) - holdout) :] if holdout > 0 else []:
            entry["split"] = "val"


def write_manifests(entries: list[dict], out: Path) -> None:
    """Write manifest.json and manifest.csv (sources joined with ';')."""
    (out / "manifest.json").write_text(json.dumps(entries, indent=2) + "\n")
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(entries[0]))
        writer.writeheader()
        for entry in entries:
            writer.writerow({**entry, "source": ";".join(entry["source"])})


def print_summary(entries: list[dict]) -> None:
    """Per-genre track counts and minutes, split into train and val."""
    print(f"\n{'genre':<12}{'tracks':>7}{'minutes':>9}{'train':>7}{'min':>8}{'val':>5}{'min':>7}")
    for genre in sorted({e["genre"] for e in entries}):
        rows = [e for e in entries if e["genre"] == genre]
        mins = {s: sum(e["duration_s"] for e in rows if e["split"] == s) / 60 for s in ("train", "val")}
        count = {s: sum(e["split"] == s for e in rows) for s in ("train", "val")}
        print(
            f"{genre:<12}{len(rows):>7}{mins['train'] + mins['val']:>9.1f}"
            f"{count['train']:>7}{mins['train']:>8.1f}{count['val']:>5}{mins['val']:>7.1f}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="corpus folder to write")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("~/.cache/genreshift-corpus"),
        help="where .debs and their contents are kept (default: %(default)s)",
    )
    parser.add_argument(
        "--holdout", type=int, default=3, help="tracks per genre held out as validation (default: %(default)s)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=None, help="keep only the first N seconds of each track (N >= 5)"
    )
    args = parser.parse_args(argv)
    if args.max_seconds is not None and args.max_seconds < MIN_SECONDS:
        parser.error(f"--max-seconds must be at least {MIN_SECONDS:g}")
    if args.holdout < 0:
        parser.error("--holdout must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Build the corpus; exit 0 if clean, 1 if anything was skipped on error."""
    args = parse_args(argv)
    for tool in ("apt-get", "dpkg", "dpkg-deb"):
        if shutil.which(tool) is None:
            print(f"error: {tool} not found; this script needs a Debian-based system", file=sys.stderr)
            return 2
    start = time.monotonic()
    cache, out = args.cache.expanduser(), args.out.expanduser()
    out.mkdir(parents=True, exist_ok=True)
    entries, errors = [], 0
    for src in SOURCES:
        try:
            new, bad = build_package(src, cache, out, args.max_seconds)
        except SkipError as exc:
            print(f"error: skipping {src.package}: {exc}", file=sys.stderr)
            errors += 1
            continue
        entries += new
        errors += bad
    if not entries:
        print("error: no tracks were written", file=sys.stderr)
        return 2
    assign_splits(entries, args.holdout)
    write_manifests(entries, out)
    print_summary(entries)
    print(f"\n{len(entries)} tracks in {out} ({time.monotonic() - start:.0f} s, {errors} errors)")
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted")
