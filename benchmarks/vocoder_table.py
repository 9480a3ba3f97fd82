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


def stft_distance(ref: torch.Tensor, out: torch.Tensor) -> float:
    total = 0.0
    for n_fft in (512, 1024, 2048):
        win = torch.hann_window(n_fft)
        a = torch.stft(ref, n_fft, n_fft // 4, window=win, return_complex=True).abs()
        b = torch.stft(out, n_fft, n_fft // 4, window=win, return_complex=True).abs()
        sc = torch.linalg.norm(a - b) / torch.linalg.norm(a).clamp(min=1e-7)
        mag = (torch.log(a.clamp(min=1e-5)) - torch.log(b.clamp(min=1e-5))).abs().mean()
        total += float(sc + mag)
    return total / 3


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
        stft, mel, secs, audio_s, visq = [], [], 0.0, 0.0, []
        for audio in tracks:
            audio = audio[: (audio.shape[-1] // MEL.hop_length) * MEL.hop_length]
            t = time.perf_counter()
            with torch.inference_mode():
                out = net(log_mel(audio, MEL)[None])[0]
            secs += time.perf_counter() - t
            audio_s += audio.shape[-1] / MEL.sample_rate
            stft.append(stft_distance(audio, out))
            mel.append(mel_l1(audio, out))
            if visqol:
                visq.append(visqol(audio, out))
        rows[name] = {"stft": float(np.mean(stft)), "mel_l1": float(np.mean(mel)), "rtf": audio_s / secs}
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


def print_vocoders(val_audio: list[torch.Tensor], seconds: float, visqol_seconds: float,
                   extra: list[str] = ()) -> dict[str, dict]:  # fmt: skip
    visqol = visqol_scorer(visqol_seconds)
    voc = vocoder_table(val_audio, {**available_vocoders(), **vocoder_files(list(extra))}, visqol)
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
    if "fast" in voc:
        fast, gl = voc["fast"], voc["griffinlim"]
        for key, label in (("stft", "MR-STFT distance"), ("mel_l1", "log-mel L1")):
            change = 100 * (fast[key] / gl[key] - 1)
            verdict = "fast beats griffinlim" if change < 0 else "griffinlim beats fast"
            print(f"{label}: fast {fast[key]:.3f} vs griffinlim {gl[key]:.3f} ({change:+.0f}%): {verdict}")
    return voc
