"""Quality of the released models on held-out tracks: vocoders and genre translation.

    python benchmarks/quality.py --corpus /work/corpus [--seconds 30] [--json out.json]

Reads the corpus manifest written by scripts/build_corpus.py (train/val split), then prints:

1. Vocoders: audio -> mel -> vocoder -> audio on every held-out track, against the original:
   multi-resolution STFT distance (spectral convergence + log-magnitude L1 at FFT sizes
   512/1024/2048) and log-mel L1. Lower is better. With visqol-python installed
   (`pip install 'genreshift[benchmarks]'`), also ViSQOL v3 in audio mode (MOS-LQO, higher
   is better) on the first `--visqol-seconds` of each excerpt.
2. Translation: a small genre classifier (logistic regression on the mean and spread of each
   mel bin over 3 s windows) is trained on the training tracks, then scores the held-out
   tracks of the *other* genres before and after `convert --to GENRE`: how often it says
   GENRE. Content kept: correlation between input and output of the chroma (12 pitch
   classes over time) and of the loudness envelope over time. The same figures for the
   clips sent through mel and the vocoder alone (no translator) show what the vocoder
   changes by itself.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from genreshift import ConvertOptions, Converter, models, registry
from genreshift.config import MelConfig
from genreshift.mel import log_mel

MEL = MelConfig()
WINDOW = 256  # classifier window in mel frames (~3 s)


def load_manifest(corpus: Path) -> list[dict]:
    return json.loads((corpus / "manifest.json").read_text())


def excerpt(path: Path, seconds: float) -> torch.Tensor:
    """The middle ``seconds`` of a track, mono, at the model rate."""
    info = sf.info(str(path))
    n = min(info.frames, int(seconds * info.samplerate))
    start = (info.frames - n) // 2
    data, _ = sf.read(str(path), start=start, frames=n, dtype="float32", always_2d=True)
    assert info.samplerate == MEL.sample_rate, f"{path}: corpus files are {MEL.sample_rate} Hz"
    return torch.from_numpy(data.mean(1))


# -- vocoder metrics -----------------------------------------------------------------------


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
    (``pip install 'genreshift[benchmarks]'``) or ``seconds`` is 0. Audio mode is built for
    48 kHz, so both signals are resampled from the model rate: the reference is band-limited
    to 11.025 kHz like every vocoder's output. The package is pure Python (with libsvm), about
    2-3 s of CPU per second of audio without numba, hence the cut."""
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


# -- genre classifier -----------------------------------------------------------------------


def window_features(audio: torch.Tensor) -> torch.Tensor:
    """(windows, 160): per-bin mean and standard deviation of log-mel over 3 s windows."""
    mel = log_mel(audio, MEL)
    n = mel.shape[-1] // WINDOW
    w = mel[:, : n * WINDOW].reshape(MEL.n_mels, n, WINDOW).permute(1, 0, 2)
    return torch.cat([w.mean(-1), w.std(-1)], dim=1)


class GenreClassifier:
    def __init__(self, genres: list[str]):
        self.genres = genres

    def fit(self, feats: torch.Tensor, labels: torch.Tensor, steps: int = 500) -> "GenreClassifier":
        self.mu, self.sd = feats.mean(0), feats.std(0).clamp(min=1e-3)
        x = (feats - self.mu) / self.sd
        self.linear = torch.nn.Linear(x.shape[1], len(self.genres))
        opt = torch.optim.Adam(self.linear.parameters(), lr=1e-2, weight_decay=1e-3)
        # Balance the genres: the corpus has far more electronic than rock.
        weight = 1.0 / torch.bincount(labels, minlength=len(self.genres)).float().clamp(min=1)
        for _ in range(steps):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.linear(x), labels, weight=weight / weight.sum())
            loss.backward()
            opt.step()
        return self

    def predict(self, feats: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.linear((feats - self.mu) / self.sd).argmax(1)


def train_classifier(corpus: Path, rows: list[dict], genres: list[str], seconds: float) -> GenreClassifier:
    feats, labels = [], []
    for row in rows:
        f = window_features(excerpt(corpus / row["path"], seconds))
        feats.append(f)
        labels += [genres.index(row["genre"])] * len(f)
    clf = GenreClassifier(genres).fit(torch.cat(feats), torch.tensor(labels))
    return clf


# -- content kept ------------------------------------------------------------------------------


def chroma(audio: torch.Tensor) -> torch.Tensor:
    """(12, frames) energy per pitch class, from a 4096-point STFT (27 Hz to 5 kHz)."""
    n_fft = 4096
    spec = torch.stft(audio, n_fft, 1024, window=torch.hann_window(n_fft), return_complex=True).abs() ** 2
    freqs = torch.fft.rfftfreq(n_fft, 1 / MEL.sample_rate)
    keep = (freqs > 27.5) & (freqs < 5000)
    pitch = torch.round(12 * torch.log2(freqs[keep] / 440.0)).long() % 12
    out = torch.zeros(12, spec.shape[-1])
    out.index_add_(0, pitch, spec[keep])
    return out / out.sum(0, keepdim=True).clamp(min=1e-9)


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp(min=1e-9))


def envelope(audio: torch.Tensor) -> torch.Tensor:
    return log_mel(audio, MEL).mean(0)  # loudness over time, one value per frame


# -- translation table -------------------------------------------------------------------------


def convert_excerpts(genre: str, clips: dict[str, torch.Tensor], vocoder: str) -> dict[str, torch.Tensor]:
    """Run the real Converter on the clips, in memory; returns the outputs."""
    conv = Converter(ConvertOptions(genre=genre, vocoder=vocoder, device="cpu"))
    return {name: conv.convert_audio(audio, MEL.sample_rate) for name, audio in clips.items()}


def resynthesize(genre: str, clips: dict[str, torch.Tensor], vocoder: str) -> dict[str, torch.Tensor]:
    """The same clips through mel and the same vocoder, *without* translation: the baseline
    that separates what the translator changes from what the vocoder changes."""
    net = Converter(ConvertOptions(genre=genre, vocoder=vocoder, device="cpu")).vocoder
    with torch.inference_mode():
        return {k: net(log_mel(a, MEL)[None])[0] for k, a in clips.items()}


def _scores(clf, target: int, clips: dict, outputs: dict) -> dict[str, float]:
    says = torch.cat([clf.predict(window_features(outputs[k])) for k in clips])
    return {
        "says_target": float((says == target).float().mean()),
        "chroma_corr": float(np.mean([correlation(chroma(clips[k]), chroma(outputs[k])) for k in clips])),
        "envelope_corr": float(np.mean([correlation(envelope(clips[k]), envelope(outputs[k])) for k in clips])),
    }


def translation_table(corpus, rows, genres, clf, seconds, vocoder) -> dict[str, dict]:
    val = [r for r in rows if r["split"] == "val"]
    clips = {Path(r["path"]).stem: (r["genre"], excerpt(corpus / r["path"], seconds)) for r in val}
    out = {}
    for genre in genres:
        others = {k: a for k, (g, a) in clips.items() if g != genre}
        target = genres.index(genre)
        before = torch.cat([clf.predict(window_features(a)) for a in others.values()])
        out[genre] = {
            "tracks": len(others),
            "windows": len(before),
            "before": float((before == target).float().mean()),
            "vocoder_only": _scores(clf, target, others, resynthesize(genre, others, vocoder)),
            "converted": _scores(clf, target, others, convert_excerpts(genre, others, vocoder)),
        }
    return out


def available_vocoders() -> dict[str, torch.nn.Module]:
    """Every released vocoder and Griffin-Lim; for a fast vocoder with Griffin-Lim refinement,
    also the two halves alone, to show what each contributes: the net without refinement,
    and the same refinement on an untrained net (the magnitude prior and a random phase head)."""
    from genreshift.vocoder import FastVocoder, GriffinLim

    nets: dict[str, torch.nn.Module] = {}
    for entry in registry.registry_entries():
        if entry.kind == "vocoder":
            ckpt = models.load_checkpoint(registry.fetch(entry), "vocoder")
            nets[entry.model] = ckpt.build()
            cfg = ckpt.config
            if ckpt.arch == "fast" and (cfg.refine_iters or cfg.mel_iters):
                bare = replace(ckpt, config=replace(cfg, refine_iters=0, mel_iters=0))
                nets[f"{entry.model}, net only (no refinement)"] = bare.build()
                torch.manual_seed(0)
                nets[f"{entry.model}, refinement only (untrained net)"] = FastVocoder(cfg, ckpt.mel).eval()
    nets["griffinlim"] = GriffinLim(mel=MEL)
    return nets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=30.0, help="excerpt per track (middle)")
    ap.add_argument("--train-seconds", type=float, default=120.0, help="per training track, for the classifier")
    ap.add_argument("--vocoder", default="auto", help="vocoder used for the translation table")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--visqol-seconds", type=float, default=10.0, help="ViSQOL on this much of each excerpt; 0: off")
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = load_manifest(args.corpus)
    genres = sorted({r["genre"] for r in rows})
    val_audio = [excerpt(args.corpus / r["path"], args.seconds) for r in rows if r["split"] == "val"]

    visqol = visqol_scorer(args.visqol_seconds)
    voc = vocoder_table(val_audio, available_vocoders(), visqol)
    print(f"\nVocoders on {len(val_audio)} held-out excerpts of {args.seconds:.0f} s (lower is better, "
          f"except ViSQOL: MOS-LQO, audio mode, first {args.visqol_seconds:g} s of each)\n")
    if visqol is None:
        print("(no ViSQOL column: pip install 'genreshift[benchmarks]' for visqol-python)\n")
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

    train = [r for r in rows if r["split"] == "train"]
    clf = train_classifier(args.corpus, train, genres, args.train_seconds)
    val_feats = {g: torch.cat([window_features(a) for r, a in zip([r for r in rows if r["split"] == "val"], val_audio) if r["genre"] == g]) for g in genres}
    acc = {g: float((clf.predict(f) == genres.index(g)).float().mean()) for g, f in val_feats.items()}
    print("\nGenre classifier accuracy on held-out windows (unconverted): "
          + ", ".join(f"{g} {100 * a:.0f}%" for g, a in acc.items()))  # fmt: skip

    usable = [g for g in genres if g in models.known_genres()]
    trans = translation_table(args.corpus, rows, usable, clf, args.seconds, args.vocoder)
    print(f"\nTranslation of held-out tracks of the other genres (vocoder: {args.vocoder})\n")
    print("| --to | tracks | windows | says target: input | vocoder only | converted "
          "| chroma corr.: vocoder only | converted | envelope corr.: vocoder only | converted |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for g, r in trans.items():
        v, c = r["vocoder_only"], r["converted"]
        print(f"| {g} | {r['tracks']} | {r['windows']} | {100 * r['before']:.0f}% | {100 * v['says_target']:.0f}% "
              f"| {100 * c['says_target']:.0f}% | {v['chroma_corr']:.2f} | {c['chroma_corr']:.2f} "
              f"| {v['envelope_corr']:.2f} | {c['envelope_corr']:.2f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"vocoders": voc, "classifier_acc": acc, "translation": trans}, indent=1))


if __name__ == "__main__":
    main()
