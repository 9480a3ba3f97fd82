"""The vocoder table of benchmarks/quality.py: every released vocoder resynthesising the
held-out tracks, against the originals (lower is better; ViSQOL, when installed, higher)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from genreshift import pretrained, registry
from genreshift.config import MelConfig
from genreshift.mel import log_mel

MEL = MelConfig()


# Bands of the distance's split (Hz); the top one ends at the model rate's Nyquist.
BANDS = (0, 500, 2000, 4000, 8000)


def stft_distance_parts(ref: torch.Tensor, out: torch.Tensor) -> dict[str, float]:
    """The multi-resolution STFT distance and its parts, each a mean over the 512, 1024 and
    2048-point STFTs: ``sc`` (spectral convergence) and ``logmag`` (mean |log A - log B|),
    the distance being their sum, and ``logmag`` split by frequency band (``BANDS``), as
    contributions to that mean, so the bands add up to ``logmag``."""
    parts = {"sc": 0.0, "logmag": 0.0, **{f"band{i}": 0.0 for i in range(len(BANDS))}}
    for n_fft in (512, 1024, 2048):
        win = torch.hann_window(n_fft)
        a = torch.stft(ref, n_fft, n_fft // 4, window=win, return_complex=True).abs()
        b = torch.stft(out, n_fft, n_fft // 4, window=win, return_complex=True).abs()
        parts["sc"] += float(torch.linalg.norm(a - b) / torch.linalg.norm(a).clamp(min=1e-7)) / 3
        error = (torch.log(a.clamp(min=1e-5)) - torch.log(b.clamp(min=1e-5))).abs()
        parts["logmag"] += float(error.mean()) / 3
        freq = torch.arange(a.shape[0]) * MEL.sample_rate / n_fft
        band = torch.bucketize(freq, torch.tensor(BANDS[1:], dtype=freq.dtype), right=True)
        for i in range(len(BANDS)):
            parts[f"band{i}"] += float(error[band == i].sum()) / error.numel() / 3
    return parts


def mel_l1(ref: torch.Tensor, out: torch.Tensor) -> float:
    return float((log_mel(ref, MEL) - log_mel(out, MEL)).abs().mean())


def visqol_scorer(seconds: float):
    """ViSQOL v3, audio mode: ``score(reference, output)`` -> MOS-LQO (1 to 5, higher is
    better) on the first ``seconds`` of each, or None when visqol-python is not installed
    (the ``benchmark`` extra) or ``seconds`` is 0. Audio mode is built for 48 kHz, so both
    signals are resampled from the model rate: the reference is band-limited to 11.025 kHz
    like every vocoder's output. The package is pure Python (with libsvm), about 2-3 s of
    CPU per second of audio without numba, hence the cut."""
    try:
        from visqol import VisqolApi
    except ImportError:
        return None
    if seconds <= 0:
        return None
    import logging

    import torchaudio

    logging.getLogger("visqol").setLevel(logging.ERROR)  # one warning per clip otherwise
    api = VisqolApi()
    api.create(mode="audio")
    n = int(seconds * MEL.sample_rate)

    def score(ref: torch.Tensor, out: torch.Tensor) -> float:
        ref, out = (torchaudio.functional.resample(x[:n].double(), MEL.sample_rate, 48000).numpy() for x in (ref, out))
        return float(api.measure_from_arrays(ref, out, 48000).moslqo)

    return score


def vocoder_table(tracks: list[torch.Tensor], vocoders: dict[str, torch.nn.Module], visqol=None) -> dict[str, dict]:
    rows = {}
    for name, net in vocoders.items():
        parts, mel, secs, audio_s, visq = [], [], 0.0, 0.0, []
        for audio in tracks:
            audio = audio[: (audio.shape[-1] // MEL.hop_length) * MEL.hop_length]
            t = time.perf_counter()
            with torch.inference_mode():
                out = net(log_mel(audio, MEL)[None])[0]
            secs += time.perf_counter() - t
            audio_s += audio.shape[-1] / MEL.sample_rate
            parts.append(stft_distance_parts(audio, out))
            mel.append(mel_l1(audio, out))
            if visqol:
                visq.append(visqol(audio, out))
        split = {k: float(np.mean([p[k] for p in parts])) for k in parts[0]}
        rows[name] = {"stft": split["sc"] + split["logmag"], "mel_l1": float(np.mean(mel)), "rtf": audio_s / secs,
                      "split": split}  # fmt: skip
        if visq:
            rows[name]["visqol"] = float(np.mean(visq))
    return rows


def available_vocoders() -> dict[str, torch.nn.Module]:
    """Every released vocoder and Griffin-Lim; for a fast vocoder with Griffin-Lim refinement,
    also the two halves alone, to show what each contributes: the net without refinement,
    and the same refinement on an untrained net (the magnitude prior and a random phase head)."""
    from genreshift.vocoder import FastVocoder, GriffinLim

    nets: dict[str, torch.nn.Module] = {}
    for entry in registry.registry_entries():
        if entry.kind == "vocoder":
            ckpt = pretrained.load_checkpoint(registry.fetch(entry), "vocoder")
            nets[entry.model] = ckpt.build()
            cfg = ckpt.config
            if ckpt.arch == "fast" and (cfg.refine_iters or cfg.mel_iters):
                bare = replace(ckpt, config=replace(cfg, refine_iters=0, mel_iters=0))
                nets[f"{entry.model}, net only (no refinement)"] = bare.build()
                torch.manual_seed(0)
                nets[f"{entry.model}, refinement only (untrained net)"] = FastVocoder(cfg, ckpt.mel).eval()
    nets["griffinlim"] = GriffinLim(mel=MEL)
    return nets


def vocoder_files(specs: list[str]) -> dict[str, torch.nn.Module]:
    """``NAME=PATH`` vocoder checkpoints to measure beside the released ones (e.g. a run in
    progress), built as their files say."""
    nets = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        nets[name] = pretrained.load_checkpoint(Path(path), "vocoder").build().eval()
    return nets


def in_int8(nets: dict[str, torch.nn.Module]) -> dict[str, torch.nn.Module]:
    """The vocoders as ``convert`` runs them on a CPU by default: the fast ones with their
    main layers in int8 (``FastVocoder.use_int8``), named "..., int8"; the others as they are."""
    return {
        (f"{name}, int8" if hasattr(net, "use_int8") and net.use_int8() else name): net for name, net in nets.items()
    }


def print_split(voc: dict[str, dict]) -> None:
    """Where each vocoder's MR-STFT distance comes from (``stft_distance_parts``)."""
    edges = [f"{lo / 1000:g}-{hi / 1000:g}" for lo, hi in zip(BANDS, [*BANDS[1:], MEL.sample_rate / 2])]
    print("\nThe MR-STFT distance split: spectral convergence + mean |log A - log B|, the latter by band (kHz)\n")
    print("| vocoder | distance | spectral convergence | log-magnitude | " + " | ".join(edges) + " |")
    print("|---|---|---|---|" + "---|" * len(edges))
    for name, r in voc.items():
        sp = r["split"]
        bands = " | ".join(f"{sp[f'band{i}']:.3f}" for i in range(len(BANDS)))
        print(f"| {name} | {r['stft']:.3f} | {sp['sc']:.3f} | {sp['logmag']:.3f} | {bands} |")
    print(
        "\n(Two independent noises of the same power differ by ln 2 = 0.693 per bin in log-magnitude: "
        "a vocoder at that level in a band puts out a noise unrelated to the original's there.)"
    )


def below_4khz(row: dict) -> float:
    """A row's MR-STFT log-magnitude error below 4 kHz: its first three bands' contributions
    (``stft_distance_parts``), so two vocoders compare as their mean error over those bins."""
    return sum(row["split"][f"band{i}"] for i in range(BANDS.index(4000)))


def _met(ok: bool) -> str:
    """How a target line says whether a target holds (here and in quality.py's)."""
    return "met" if ok else "missed"


def issue22_targets(voc: dict[str, dict], name: str, v2: str = "fast", gl: str = "griffinlim") -> str:
    """One line: vocoder ``name`` against issue 22's quality targets, read from the rows of
    v2 and Griffin-Lim measured in the same run: ViSQOL >= Griffin-Lim's and at most 0.01
    below v2's; log-mel L1 below Griffin-Lim's; MR-STFT below 4 kHz at most v2's; the
    full-band MR-STFT beside v2's, printed, not a target."""
    r, a, g = voc[name], voc[v2], voc[gl]
    parts = []
    if "visqol" in r and "visqol" in a and "visqol" in g:
        ok = r["visqol"] >= g["visqol"] and r["visqol"] >= a["visqol"] - 0.01
        parts.append(f"ViSQOL {r['visqol']:.3f} (>= {g['visqol']:.3f} and >= {a['visqol'] - 0.01:.3f}: {_met(ok)})")
    else:
        parts.append("ViSQOL not measured (target unread)")
    parts.append(f"log-mel L1 {r['mel_l1']:.3f} (< {g['mel_l1']:.3f}: {_met(r['mel_l1'] < g['mel_l1'])})")
    low, low_v2 = below_4khz(r), below_4khz(a)
    parts.append(f"MR-STFT below 4 kHz {low:.3f} (<= {low_v2:.3f}: {_met(low <= low_v2)})")
    parts.append(f"full-band MR-STFT {r['stft']:.3f} (v2 {a['stft']:.3f}, printed)")
    return f"{name} against issue 22's targets: " + "; ".join(parts)


def judged_against_v2(rows: list[str], named: set[str]) -> tuple[str, list[str]]:
    """Which row is v2 for issue 22's targets, and which rows get a target line: the
    released default (v3 since 0.3.0; v2 is then the "fast-v2" row) and every vocoder named
    by --vocoder-file. Before 0.3.0 "fast" was v2 itself and only the named ones were judged."""
    fast = "fast, int8" if "fast, int8" in rows else "fast"
    v2 = next((n for n in ("fast-v2, int8", "fast-v2") if n in rows), fast)
    judged = [fast] if v2 != fast and fast in rows else []
    return v2, judged + [n for n in rows if n not in judged and (n in named or n.removesuffix(", int8") in named)]


def print_vocoders(val_audio: list[torch.Tensor], seconds: float, visqol_seconds: float,
                   extra: list[str] = (), int8: bool = False) -> dict[str, dict]:  # fmt: skip
    visqol = visqol_scorer(visqol_seconds)
    nets = {**available_vocoders(), **vocoder_files(list(extra))}
    voc = vocoder_table(val_audio, in_int8(nets) if int8 else nets, visqol)
    print(
        f"\nVocoders on {len(val_audio)} held-out excerpts of {seconds:.0f} s (lower is better, "
        f"except ViSQOL: MOS-LQO, audio mode, first {visqol_seconds:g} s of each)\n"
    )
    if visqol is None:
        why = "--visqol-seconds 0" if visqol_seconds <= 0 else "pip install -e '.[benchmark]' for visqol-python"
        print(f"(no ViSQOL column: {why})\n")
    print("| vocoder | MR-STFT distance | log-mel L1 | ViSQOL | speed (x real time) |\n|---|---|---|---|---|")
    for name, r in voc.items():
        vq = f"{r['visqol']:.3f}" if "visqol" in r else "-"
        print(f"| {name} | {r['stft']:.3f} | {r['mel_l1']:.3f} | {vq} | {r['rtf']:.0f} |")
    print_split(voc)
    fast_name = "fast, int8" if "fast, int8" in voc else "fast"
    if fast_name in voc:
        fast, gl = voc[fast_name], voc["griffinlim"]
        for key, label in (("stft", "MR-STFT distance"), ("mel_l1", "log-mel L1")):
            change = 100 * (fast[key] / gl[key] - 1)
            verdict = "fast beats griffinlim" if change < 0 else "griffinlim beats fast"
            print(f"{label}: fast {fast[key]:.3f} vs griffinlim {gl[key]:.3f} ({change:+.0f}%): {verdict}")
        v2_name, judged = judged_against_v2(list(voc), {spec.partition("=")[0] for spec in extra})
        for name in judged:
            print(issue22_targets(voc, name, v2=v2_name))
    return voc
