"""Speed and memory of `genreshift convert`, end to end and stage by stage.

    python benchmarks/speed.py                      # the full comparison (about 20 minutes)
    python benchmarks/speed.py --quick              # small sizes: a smoke test
    python benchmarks/speed.py --input a.flac b.wav --only e2e,stages
    python benchmarks/speed.py --json speed.json --repeats 5
    python benchmarks/speed.py --device cuda --batches 16,64,256 --only e2e,batch,stages,long
    python benchmarks/speed.py --only e2e,stages --vocoder v3=runs/v3/v3.pt   # a candidate beside the rest
    python benchmarks/speed.py --only e2e,stages --precision int8,float32      # int8 (the CPU default) vs --no-int8

Every configuration runs in a fresh Python process, so its peak resident memory (from
``os.wait4``) is its own; the time is the median of ``--repeats`` runs (one run for those
that take over a minute; the repeats run in rounds over all configurations) and covers only
the work (imports and model loading are reported apart, as ``startup``). The real-time factor
is seconds of audio per second of wall time.

Groups (``--only``): ``e2e`` (decode -> mel -> translate -> vocode -> encode, one track,
vocoder fast / melgan / griffinlim), ``batch`` (batch sizes 1..64), ``threads`` (torch
threads 1 and 2), ``long`` (one 60-minute track, one 10-minute track, 200 x 15 s files),
``stages`` (each stage alone; the model stages at every ``--batches`` size when it is given),
``compile`` (torch.compile of the translator and the fast vocoder, against eager).

``--device cuda`` runs the models on the GPU as ``convert`` does (autocast, pinned copies),
synchronises before every clock reading, and adds each run's peak GPU memory
(``torch.cuda.max_memory_allocated``) to the table.

Models: real-size architectures (``TranslatorConfig()``, ``FastVocoderConfig()``,
``MelGANConfig()``) with random weights, unless ``--weights registry`` asks for the
released ones. Random weights cost the same time as trained ones; the output says which.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

RATE, CHANNELS = 44100, 2
SLOW_SECONDS = 60.0  # configurations slower than this run once, whatever --repeats says


# -- generated input --------------------------------------------------------------------


def make_track(path: Path, seconds: float, seed: int = 0) -> Path:
    """Music-like stereo audio (chords, a bass line, noise hits), written block by block."""
    if path.exists() and sf.info(str(path)).frames == int(seconds * RATE):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scale = 110 * 2 ** (np.array([0, 2, 3, 5, 7, 8, 10, 12, 14, 15]) / 12)
    with sf.SoundFile(str(path), "w", RATE, CHANNELS, subtype="PCM_16") as f:
        done, total = 0, int(seconds * RATE)
        while done < total:
            n = min(RATE // 2, total - done)  # one beat at 120 bpm
            t = (np.arange(n) + done) / RATE
            env = np.exp(-np.arange(n) / (0.25 * RATE))
            chord = sum(np.sin(2 * np.pi * 2 * rng.choice(scale) * t) for _ in range(3)) / 3
            bass = np.sin(2 * np.pi * rng.choice(scale[:4]) / 2 * t)
            hit = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.02 * RATE))
            left = 0.25 * chord * env + 0.2 * bass + 0.1 * hit
            right = 0.25 * chord * env + 0.2 * bass - 0.1 * hit
            f.write(np.stack([left, right], 1).astype(np.float32))
            done += n
    return path


def random_models(folder: Path) -> dict[str, str]:
    """Real-size translator and vocoders with random weights, saved as checkpoints."""
    import torch

    from genreshift import checkpoint
    from genreshift.config import FastVocoderConfig, MelConfig, MelGANConfig, TranslatorConfig
    from genreshift.translator import Generator
    from genreshift.vocoder import FastVocoder, MelGAN

    paths = {k: folder / f"{k}.pt" for k in ["translator", "fast", "melgan"]}
    if all(p.exists() for p in paths.values()):
        return {k: str(p) for k, p in paths.items()}
    torch.manual_seed(0)
    g = Generator(TranslatorConfig())
    torch.nn.init.normal_(g.out[1].weight, std=0.02)  # a fresh G is the identity; make it act
    mel = MelConfig()
    cks = {
        "translator": checkpoint.Checkpoint(
            "translator", "travelgan", TranslatorConfig(), mel, g.state_dict(), genres=["bench"]
        ),
        "fast": checkpoint.Checkpoint(
            "vocoder", "fast", FastVocoderConfig(), mel, FastVocoder(FastVocoderConfig()).state_dict()
        ),
        "melgan": checkpoint.Checkpoint("vocoder", "melgan", MelGANConfig(), mel, MelGAN(MelGANConfig()).state_dict()),
    }
    for k, ck in cks.items():
        checkpoint.save(ck, paths[k])
    return {k: str(p) for k, p in paths.items()}


# -- the measured work (runs in the child process) ----------------------------------------


def worker(spec: dict) -> dict:
    """Set up (imports, models, input in memory), then time ``spec['op']`` once."""
    import torch

    torch.set_num_threads(spec["threads"])
    from genreshift import Converter, ConvertOptions

    op = spec["op"]
    # The vocoder stage runs convert's own path with the translator off (_vocode_as_convert).
    vocoder_only = {"strength": 0.0, "level": False} if _vocodes_as_convert(spec) else {}
    options = ConvertOptions(
        genre=spec.get("genre"), model=spec.get("translator"), vocoder=spec["vocoder"],
        output=Path(spec["out"]), device=spec.get("device", "cpu"), batch_size=spec["batch"],
        int8=spec.get("int8", True), workers=spec.get("workers"), **vocoder_only,
    )  # fmt: skip
    conv = Converter(options)
    conv.load_models()
    inputs = [Path(p) for p in spec["inputs"]]
    seconds = sum(sf.info(str(p)).duration for p in inputs)
    if op in ("convert", "library"):
        clocks = _clocked(conv) if op == "library" else None
        start = time.perf_counter()
        results = conv.convert(inputs)
        _sync(conv.device)
        wall = time.perf_counter() - start
        bad = [r.message for r in results if r.status != "converted"]
        if bad:
            raise SystemExit(f"convert failed: {bad[0]}")
        out = {"wall": wall, "audio": seconds, **_gpu_memory(conv.device)}
        if clocks is not None:
            out.update(clocks.report(conv, wall))
        return out
    wall, note = _stage(conv, op, inputs, spec)
    return {"wall": wall, "audio": seconds, "note": note, **_gpu_memory(conv.device)}


class _Clocks:
    """Where a library's wall time goes, read inside one end-to-end run: the seconds the
    decode and the writer threads were busy (summed over threads), the main thread's seconds
    in model calls, and on CUDA the GPU's busy time between CUDA events around each call."""

    def __init__(self):
        import threading

        self.busy = {"decode": 0.0, "write": 0.0, "models": 0.0}
        self.events: list = []
        self.lock = threading.Lock()

    def timed(self, name: str, fn):
        def clocked(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self.lock:
                    self.busy[name] += time.perf_counter() - started

        return clocked

    def report(self, conv, wall: float) -> dict:
        gpu = sum(start.elapsed_time(end) for start, end in self.events) / 1000 if self.events else None
        workers, busy = conv.workers, self.busy
        parts = [f"{conv.workers} worker(s), batch {conv.batch_size}",
                 f"decode {busy['decode']:.1f} s ({busy['decode'] / workers / wall:.0%} of {workers} threads)",
                 f"write {busy['write']:.1f} s ({busy['write'] / workers / wall:.0%})",
                 f"models {busy['models']:.1f} s ({busy['models'] / wall:.0%} of the main thread)"]  # fmt: skip
        if gpu is not None:
            parts.append(f"GPU busy {gpu:.1f} s ({gpu / wall:.0%})")
        return {"note": "; ".join(parts), "busy": {**busy, "gpu": gpu}, "workers": workers}


def _clocked(conv) -> _Clocks:
    """Clocks around the converter's decode, write and model calls (this process is fresh)."""
    import torch

    from genreshift import batching

    clocks = _Clocks()
    conv._next_segment = clocks.timed("decode", conv._next_segment)
    conv._write = clocks.timed("write", conv._write)
    step, cuda = batching.BatchQueue._step, conv.device.type == "cuda"

    def clocked_step(queue):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        finished = step(queue)
        if cuda:
            end.record()
            clocks.events.append((start, end))
        return finished

    batching.BatchQueue._step = clocks.timed("models", clocked_step)
    return clocks


def library(folder: Path, files: int, shortest: float, longest: float) -> list[str]:
    """``files`` generated tracks whose lengths spread evenly from ``shortest`` to ``longest``
    seconds (in a shuffled order, as a library's are)."""
    from concurrent.futures import ProcessPoolExecutor

    rng = np.random.default_rng(7)
    lengths = np.linspace(shortest, longest, files)
    rng.shuffle(lengths)
    paths = [folder / f"{i:04}.wav" for i in range(files)]
    with ProcessPoolExecutor(os.cpu_count()) as pool:  # hours of audio: every core writes some
        done = pool.map(make_track, paths, [round(float(s), 1) for s in lengths], range(1000, 1000 + files))
    return [str(p) for p in done]


def _sync(device) -> None:
    """CUDA runs asynchronously: wait for the queued work before reading a clock."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _gpu_memory(device) -> dict:
    import torch

    if device.type != "cuda":
        return {}
    return {"gpu_mb": torch.cuda.max_memory_allocated(device) / 2**20}


def _stage(conv, op: str, inputs: list[Path], spec: dict) -> tuple[float, str]:
    """One stage alone on the whole input, fed the way the pipeline feeds it."""
    import torch

    from genreshift import chunking, mel as melmod
    from genreshift.audio import probe
    from genreshift.batching import BatchQueue, Job, in_parts
    from genreshift.device import inference_context
    from genreshift.pipeline import vocoder_windows
    from genreshift.audio import StreamResampler
    from genreshift.streaming import TrackReader

    cfg = conv.mel_config
    seg = int(conv.options.segment_seconds * cfg.sample_rate)  # the pipeline's segments, in model-rate samples

    def decode(path: Path) -> list[torch.Tensor]:
        reader = TrackReader(path, probe(path), cfg, mono=True)
        total = reader.frames * cfg.hop_length
        bounds = [total * i // max(1, round(total / seg)) for i in range(max(1, round(total / seg)) + 1)]
        return [reader.samples(lo, hi) for lo, hi in zip(bounds, bounds[1:])]  # a segment each

    if op == "decode":
        start = time.perf_counter()
        for p in inputs:
            decode(p)
        return time.perf_counter() - start, "soundfile blocks, mix to mono, resample to 22050 Hz"
    waves = [w for p in inputs for w in decode(p)]
    if op == "encode":
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=spec["out"]) as tmp:
            for i, w in enumerate(waves):
                r = StreamResampler(cfg.sample_rate, RATE)
                with sf.SoundFile(f"{tmp}/{i}.wav", "w", RATE, CHANNELS, subtype="PCM_16") as f:
                    f.write(r.push(w, last=True).expand(CHANNELS, -1).clamp(-1, 1).T.contiguous().numpy())
        return time.perf_counter() - start, "resample to 44.1 kHz, PCM_16 WAV"
    if op == "mel":
        start = time.perf_counter()
        for w in waves:
            melmod.log_mel(w, cfg)
        return time.perf_counter() - start, f"log-mel, {conv.options.segment_seconds:g} s at a time"
    if _vocodes_as_convert(spec):
        return _vocode_as_convert(conv, [torch.cat(decode(p), dim=-1).flatten() for p in inputs])  # mono, whole track
    # Model stages are timed after two warm-up batches (below): steady-state throughput.
    mels = [melmod.log_mel(w, cfg) for w in waves]
    if op == "translate":
        model, ccfg, scale = conv.translator, conv.chunk, 1
    else:
        model, ccfg, scale = conv.vocoder, vocoder_windows(conv.vocoder), cfg.hop_length
    note = f"{conv.vocoder.arch if op == 'vocode' else 'translator'}, batch {spec['batch']}"
    device = conv.device
    cpu_part = op == "vocode" and device.type == "cpu"
    part = conv.vocoder.cpu_batch if cpu_part else spec["batch"]  # as the pipeline runs it
    if spec.get("compile"):
        model, note = _compiled(model, mels[0], ccfg, min(part, spec["batch"]), note, device)
    else:  # the same two warm-up calls compile gets: first calls set up oneDNN / cuDNN kernels
        windows = chunking.split(mels[0], chunking.plan_windows(mels[0].shape[-1], ccfg))[: min(part, spec["batch"]), 0]
        with inference_context(device):
            model(windows.to(device)), model(windows.to(device))
    if part < spec["batch"]:
        model, note = in_parts(model, part), f"{note} (calls of {part})"
    queue = BatchQueue(model, spec["batch"], device)
    _sync(device)
    start = time.perf_counter()
    for m in mels:
        plan = chunking.plan_windows(m.shape[-1], ccfg)
        queue.add(Job(chunking.split(m, plan).flatten(0, 1), plan))
        for job in queue.run():
            chunking.stitch(job.result()[:, None], job.payload, scale)
    for job in queue.run(flush=True):
        chunking.stitch(job.result()[:, None], job.payload, scale)
    _sync(device)
    return time.perf_counter() - start, note


def _vocodes_as_convert(spec: dict) -> bool:
    """Whether this is the vocoder stage, timed through convert's own path. The torch.compile
    rows keep the direct loop below for both of their sides (compile needs the bare model)."""
    return spec["op"] == "vocode" and not spec.get("compile")


def _vocode_as_convert(conv, tracks: list) -> tuple[float, str]:
    """The vocoder as `convert` runs it, so that the stage's figure is the pipeline's: the
    same segments, batches, CPU parts and, for an integrated-phase vocoder, the same
    window-after-window synthesis. ``conv`` has the translator off (strength 0) and no
    levelling; each decoded track (model rate, mono) goes through ``Converter.convert_audio``.
    Its mel and limiter run too (the mel row shows how little that is)."""
    rate = conv.mel_config.sample_rate
    conv.convert_audio(tracks[0][: 5 * rate], rate)  # warm-up: first calls set up oneDNN / cuDNN kernels
    _sync(conv.device)
    start = time.perf_counter()
    for track in tracks:
        conv.convert_audio(track, rate)
    _sync(conv.device)
    wall = time.perf_counter() - start
    return (
        wall,
        f"{conv.vocoder.arch}, batch {conv.batch_size}, through convert (translator off; its mel and limiter too)",
    )


def _compiled(model, mel, ccfg, batch: int, note: str, device):
    """torch.compile, warmed up on the batch shape; eager (and why) if it fails."""
    import torch

    from genreshift import chunking

    start = time.perf_counter()
    try:
        compiled = torch.compile(model, dynamic=False)
        from genreshift.device import inference_context

        windows = chunking.split(mel, chunking.plan_windows(mel.shape[-1], ccfg))[:batch, 0].to(device)
        with inference_context(device):
            for _ in range(2):
                compiled(windows)
    except Exception as exc:  # no compiler, unsupported op, ...: the eager model still works
        return model, f"{note}; torch.compile failed, eager ({type(exc).__name__})"
    return compiled, f"{note}; torch.compile (warm-up {time.perf_counter() - start:.0f} s, not counted)"


# -- the parent: configurations, fresh processes, table -----------------------------------


def run_one(spec: dict) -> dict:
    """Run ``spec`` in a fresh interpreter; returns its result plus wall time and peak RSS."""
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"]), "MKL_NUM_THREADS": str(spec["threads"])}
    with tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            text=True,
        )
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        proc.returncode = os.waitstatus_to_exitcode(status)
        total = time.perf_counter() - started
        if proc.returncode:
            err.seek(0)
            raise RuntimeError(f"{spec['name']}: worker failed:\n{err.read()[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["startup"] = total - result["wall"]
    result["rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    return result


def configurations(args, tracks: dict[str, list[str]], models: dict[str, str]) -> list[dict]:
    base = {"threads": args.threads, "batch": args.batch, "vocoder": models.get("fast", "fast"), "op": "convert", "inputs": tracks["one"],
            "device": args.device}  # fmt: skip
    if args.weights == "random":
        base["translator"] = models["translator"]
    else:
        base["genre"] = args.genre
    voc = {name: models.get(name, name) for name in ["fast", "melgan", "griffinlim"]}
    one = f"{len(tracks['one'])} file(s), {tracks['one_seconds'] / 60:.1f} min"
    out: list[dict] = []

    def add(group: str, name: str, **kw):
        out.append({**base, "group": group, "name": name, **kw})

    vocoders = list(args.vocoders or (["fast", "griffinlim"] if args.quick else ["fast", "melgan", "griffinlim"]))
    if args.weights == "registry":  # only what the registry releases (no MelGAN yet)
        from genreshift import registry

        released = {e.model for e in registry.registry_entries() if e.kind == "vocoder"}
        vocoders = [v for v in vocoders if v == "griffinlim" or v in released]
    for v, path in args.vocoder:  # --vocoder NAME=PATH: candidate vocoder files beside the others
        voc[v] = path
        vocoders.append(v)

    def precisions(v: str) -> list[tuple[str, bool]]:
        """(label, int8) per --precision: int8 changes only the fast vocoders, so the others
        get one unlabelled row."""
        if v in ("melgan", "griffinlim"):
            return [("", True)]
        return [(f", {p}" if len(args.precision) > 1 else "", p == "int8") for p in args.precision]

    for v in vocoders:
        for tag, int8 in precisions(v):
            add("e2e", f"convert, vocoder {v}{tag} ({one})", vocoder=voc[v], int8=int8)
    for b in args.batches:
        add("batch", f"convert, batch {b} (fast)", batch=b)
    for n in sorted({1, 2, args.threads}):
        add("threads", f"convert, {n} torch thread(s) (fast)", threads=n)
    if tracks["long"]:  # generated only when the group is asked for
        add("long", f"1 x {args.long_minutes:g} min (fast)", inputs=tracks["long"])
        add("long", f"1 x {args.mid_minutes:.3g} min (fast)", inputs=tracks["mid"])
        add("long", f"{len(tracks['short'])} x {args.short_seconds:g} s (fast)", inputs=tracks["short"])
        for v, _ in args.vocoder:  # a candidate's memory against its own floor (issue 22)
            add("long", f"1 x {args.long_minutes:g} min ({v})", inputs=tracks["long"], vocoder=voc[v])
            add("long", f"1 x {args.mid_minutes:.3g} min ({v})", inputs=tracks["mid"], vocoder=voc[v])
            add("long", f"import + load models, no audio ({v})", op="idle", vocoder=voc[v])
    if tracks["album"]:  # issue 22's album: the whole command, startup included, as a user times it
        n, minutes = len(tracks["album"]), tracks["album_seconds"] / len(tracks["album"]) / 60
        for v in vocoders:
            if v != "griffinlim":
                add("album", f"album: {n} x {minutes:.3g} min, vocoder {v}, startup included",
                    inputs=tracks["album"], vocoder=voc[v], with_startup=True)  # fmt: skip
    if tracks["library"]:
        n, minutes = len(tracks["library"]), tracks["library_seconds"] / 60
        for w in args.library_workers:
            label = f"--workers {w}" if w else "default workers"
            add("library", f"library: {n} files, {minutes:.3g} min, {label}", op="library",
                inputs=tracks["library"], workers=w, batch=args.library_batch)  # fmt: skip
    if not args.quick:
        add("stages", "import + load models (no audio)", op="idle")
    for stage in ["decode", "mel"]:
        add("stages", stage, op=stage)
    sizes = args.stage_batches
    for b in sizes:
        at = f", batch {b}" if len(sizes) > 1 else ""
        add("stages", f"translate{at}", op="translate", batch=b)
        for v in vocoders if args.vocoders or not args.quick else ["fast", *(v for v, _ in args.vocoder)]:
            for tag, int8 in precisions(v):
                add("stages", f"vocode {v}{tag}{at}", op="vocode", vocoder=voc[v], batch=b, int8=int8)
    add("stages", "encode", op="encode")
    for name, kw in [("translate", {"op": "translate"}), ("vocode fast", {"op": "vocode"})]:
        add("compile", f"{name}, eager", **kw)
        add("compile", f"{name}, torch.compile", compile=True, **kw)
    # --quick leaves out torch.compile (half a minute of compiling per model) unless asked.
    wanted = (
        set(args.only.split(","))
        if args.only
        else ({"e2e", "batch", "threads", "long", "album", "stages"} if args.quick else None)
    )
    if args.library:
        wanted = (wanted or set()) | {"library"} if args.only else {"library"}
    return [c for c in out if wanted is None or c["group"] in wanted]


def measure(specs: list[dict], repeats: int, out_dir: Path) -> list[dict]:
    """Every configuration once, in order, then the repeats in rounds over all of them: this
    VM's speed drifts by 10-15% over minutes, and rounds spread the drift over every row
    instead of landing on whichever configuration ran during it (e.g. v2 beside v3)."""
    unique: dict[str, dict] = {}  # the work to run, once per distinct configuration
    keys = []
    for spec in specs:
        spec = {**spec, "out": str(out_dir)}
        key = json.dumps({k: v for k, v in spec.items() if k not in ("group", "name")}, sort_keys=True)
        unique.setdefault(key, spec)
        keys.append(key)
    runs: dict[str, list[dict]] = {}
    for key, spec in unique.items():
        runs[key] = [run_one(spec)]
        print(f"  {spec['group']:8} {spec['name']:44} {runs[key][0]['wall']:8.2f} s  {runs[key][0]['rss_mb']:6.0f} MB",
              file=sys.stderr, flush=True)  # fmt: skip
    # A configuration that takes over a minute varies by a few percent at most: once is enough.
    again = [k for k, r in runs.items() if r[0]["wall"] + r[0]["startup"] < SLOW_SECONDS]
    for _ in range(repeats - 1):
        for key in again:
            runs[key].append(run_one(unique[key]))
    rows = []
    for spec, key in zip(specs, keys):
        done = runs[key]
        rows.append({
            "group": spec["group"], "name": spec["name"], "audio_s": done[0]["audio"],
            "wall_s": statistics.median(r["wall"] for r in done), "rtf": _real_time(unique[key], done),
            "rss_mb": statistics.median(r["rss_mb"] for r in done), "startup_s": statistics.median(r["startup"] for r in done),
            "gpu_mb": max((r["gpu_mb"] for r in done if "gpu_mb" in r), default=None),
            "note": done[0].get("note", "") + ("" if len(done) == repeats else f" ({len(done)} run)"), "runs": done,
            "spec": {**unique[key], "group": spec["group"], "name": spec["name"]},
        })  # fmt: skip
    return rows


def _real_time(spec: dict, runs: list[dict]) -> float | None:
    """Seconds of audio per second of wall time (median over runs); the album group counts
    startup (imports, model loading) in, as `time genreshift convert` would."""
    if spec["op"] == "idle":
        return None
    wall = statistics.median(r["wall"] + (r["startup"] if spec.get("with_startup") else 0.0) for r in runs)
    return runs[0]["audio"] / wall if wall > 0 else None


def table(rows: list[dict]) -> str:
    gpu = any(r.get("gpu_mb") is not None for r in rows)
    lines = [
        "| group | configuration | audio | wall (median) | x real time | peak RSS |" + (" peak GPU |" if gpu else "")
        + " startup | note |",
        "|---|---|---:|---:|---:|---:|" + ("---:|" if gpu else "") + "---:|---|",
    ]  # fmt: skip
    for r in rows:
        rtf = f"{r['rtf']:.0f}x" if r["rtf"] is not None else ""
        audio = f"{r['audio_s']:.0f} s" if r["spec"]["op"] != "idle" else ""
        wall = f"{r['wall_s']:.2f} s" if r["spec"]["op"] != "idle" else ""
        mem = f"| {r['gpu_mb']:.0f} MB " if gpu and r.get("gpu_mb") is not None else ("| " if gpu else "")
        lines.append(
            f"| {r['group']} | {r['name']} | {audio} | {wall} | {rtf} | {r['rss_mb']:.0f} MB {mem}| {r['startup_s']:.1f} s | {r['note']} |"
        )
    return "\n".join(lines)


def cpu_name() -> str:
    """The CPU's model and widest vector unit: the development VM is not always the same
    machine, and figures from an AVX2 and an AVX-512 host are not comparable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{fields.get('model name', platform.machine())} ({vector})"


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of sizes") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("batch sizes must be at least 1")
    return sizes


def _vocoders(text: str) -> list[str]:
    names = text.split(",")
    unknown = set(names) - {"fast", "melgan", "griffinlim"}
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown vocoder(s) {', '.join(sorted(unknown))}: use fast, melgan, griffinlim"
        )
    return names


def _device_name(spec: str) -> str:
    """The device as the figures must name it: a GPU by its model."""
    import torch

    from genreshift.device import resolve_device

    device = resolve_device(spec)
    if device.type != "cuda":
        return str(device)
    return f"{device} ({torch.cuda.get_device_name(device)}, {torch.cuda.get_device_properties(device).total_memory / 2**30:.0f} GiB)"


def _precisions(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names or set(names) - {"int8", "float32"}:
        raise argparse.ArgumentTypeError(f"{text}: give int8, float32 or int8,float32")
    return names


def _named_file(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not Path(path).is_file():
        raise argparse.ArgumentTypeError(f"{text}: give NAME=PATH of an existing vocoder checkpoint")
    return name, str(Path(path).resolve())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--input", nargs="+", type=Path, help="audio files for the one-track groups (default: generated)")
    ap.add_argument("--quick", action="store_true", help="small sizes and one repeat: a smoke test")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", help="comma-separated groups: e2e,batch,threads,long,album,stages,compile")
    ap.add_argument("--weights", choices=["random", "registry"], default="random")
    ap.add_argument("--genre", help="with --weights registry: the genre to convert to (default: the first)")
    ap.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N: where the models run")
    ap.add_argument(
        "--batches", type=_sizes, help="batch sizes for the batch group and the model stages, e.g. 16,64,256"
    )
    ap.add_argument("--json", type=Path, help="write every run and the medians here")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "genreshift-speed",
                    help="generated audio and models are kept here between runs")  # fmt: skip
    ap.add_argument("--vocoders", type=_vocoders, help="built-in vocoders for e2e and stages (default: all), e.g. fast")
    ap.add_argument("--batch", type=int, default=16, help="batch size of every configuration but the batch group")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of every configuration but the threads group")
    ap.add_argument(
        "--long-minutes",
        type=float,
        default=60.0,
        help="the long group: one track this long, one a sixth as long, 200 x 15 s files per 60 minutes",
    )
    ap.add_argument("--vocoder", action="append", default=[], type=_named_file, metavar="NAME=PATH",
                    help="also measure this vocoder checkpoint (e2e and stages); repeatable")  # fmt: skip
    ap.add_argument("--precision", default="int8", type=_precisions,
                    help="int8 (convert's default on a CPU), float32 (convert --no-int8) or int8,float32: "
                         "rows for each, e2e and vocoder stages")  # fmt: skip
    ap.add_argument("--library", action="store_true",
                    help="convert a generated library (--library-files files of 15 s to 5 min) end to end, "
                         "with the time each stage was busy; alone unless --only names other groups")  # fmt: skip
    ap.add_argument("--library-files", type=int, default=200)
    ap.add_argument("--library-workers", type=_sizes, default=None,
                    help="--workers of each library run (default: convert's default)")  # fmt: skip
    ap.add_argument("--library-batch", default="auto", help="--batch-size of the library runs (default: auto)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        if spec["op"] == "idle":
            worker({**spec, "op": "convert", "inputs": []})
            print(json.dumps({"wall": 0.0, "audio": 0.0}))
        else:
            print(json.dumps(worker(spec)))
        return
    try:
        device_label = _device_name(args.device)  # before any work: a missing GPU fails at once
    except Exception as exc:
        raise SystemExit(f"--device {args.device}: {exc}") from None
    q = args.quick
    args.repeats = 1 if q else args.repeats
    args.stage_batches = args.batches or [args.batch]
    args.batches = args.batches or ([1, 16] if q else [1, 4, 16, 64])
    one_s = 5.0 if q else 240.0
    args.long_minutes, args.mid_minutes = (0.5, 0.25) if q else (args.long_minutes, args.long_minutes / 6)
    n_short, args.short_seconds = (4, 3.0) if q else (max(4, round(args.long_minutes * 10 / 3)), 15.0)
    work = args.workdir
    print(f"preparing inputs in {work} ...", file=sys.stderr, flush=True)

    def asked(group: str) -> bool:  # its inputs are generated only then
        return args.only is None or group in args.only.split(",")

    long, album = asked("long"), asked("album")
    n_album, album_s = (3, 4.0) if q else (10, 180.0)
    tracks = {
        "one": [str(p) for p in args.input] if args.input else [str(make_track(work / f"one-{one_s:g}s.wav", one_s))],
        "long": [str(make_track(work / f"long-{args.long_minutes:g}min.wav", args.long_minutes * 60, 1))] if long else [],
        "mid": [str(make_track(work / f"mid-{args.mid_minutes:g}min.wav", args.mid_minutes * 60, 2))] if long else [],
        "short": [str(make_track(work / f"short-{args.short_seconds:g}s" / f"{i:03}.wav", args.short_seconds, 10 + i))
                  for i in range(n_short if long else 0)],
        "album": [str(make_track(work / f"album-{album_s:g}s" / f"{i + 1:02}.wav", album_s, 100 + i))
                  for i in range(n_album if album else 0)],
    }  # fmt: skip
    tracks["album_seconds"] = sum(sf.info(p).duration for p in tracks["album"])
    tracks["one_seconds"] = sum(sf.info(p).duration for p in tracks["one"])
    shortest, longest = (2.0, 6.0) if q else (15.0, 300.0)
    tracks["library"] = (
        library(work / f"library-{args.library_files}", args.library_files, shortest, longest) if args.library else []
    )
    tracks["library_seconds"] = sum(sf.info(p).duration for p in tracks["library"])
    args.library_workers = args.library_workers or [None]
    if args.library_batch != "auto":
        args.library_batch = int(args.library_batch)
    if args.weights == "random":
        models, weights = (
            random_models(work / "models"),
            "real-size architectures with RANDOM weights (same cost as trained ones)",
        )
    else:
        from genreshift import registry

        genres = registry.builtin_genres()
        if not genres:
            raise SystemExit("--weights registry: the registry lists no genre yet; use --weights random")
        args.genre = args.genre or sorted(genres)[0]
        models, weights = {}, f"registry models (genre {args.genre})"
    specs = configurations(args, tracks, models)
    out_dir = work / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    rows = measure(specs, args.repeats, out_dir)
    import torch

    header = [
        f"genreshift speed: {cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"python {platform.python_version()}",
        f"models: {weights}; input: {RATE} Hz stereo PCM_16 WAV; device {device_label}; median of {args.repeats} run(s)",
        f"load average before/after: {load[0]:.2f} / {os.getloadavg()[0]:.2f} (other busy processes distort the figures)",
    ]
    print("\n".join(header) + "\n\n" + table(rows))
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
