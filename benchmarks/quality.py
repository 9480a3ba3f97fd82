"""Quality of the released models on held-out tracks: vocoders and genre translation.

    python benchmarks/quality.py --corpus /work/corpus [--seconds 30] [--json out.json]
    python benchmarks/quality.py --corpus /work/corpus --content-only --translator rock=rock.pt

Reads the corpus manifest written by scripts/build_corpus.py (train/val split), then prints:

1. Vocoders: audio -> mel -> vocoder -> audio on every held-out track, against the original:
   multi-resolution STFT distance (spectral convergence + log-magnitude L1 at FFT sizes
   512/1024/2048) and log-mel L1. Lower is better. With visqol-python installed (the
   `benchmark` extra), also ViSQOL v3 in audio mode (MOS-LQO, higher is better) on the
   first `--visqol-seconds` of each excerpt.
2. Translation, on the held-out tracks of the *other* genres, for each genre's translator:
   - content kept: a note transcriber (basic-pitch; benchmarks/content.py) hears input and
     output; pitch-class correlation per 2 s window and note F1, plus the correlation of
     the loudness envelope;
   - style: a small genre classifier (logistic regression on the mean and spread of each
     mel bin over 3 s windows), trained on the training tracks, says how often it hears
     the target genre before and after `convert --to GENRE`.
   - style, judged so that an equaliser cannot fool it: benchmarks/style_judge.py, a CNN on
     log-mel patches standardised per bin (its saved weights, `--style-judge`), gives each
     clip one verdict; the share of clips it hears as the target genre (issue 20).
   The same figures for the clips sent through mel and the vocoder alone (no translator)
   show what the vocoder changes by itself; "kept" is the converted content figure as a
   share of that vocoder-only one. The clips through the translator's colour map alone (a
   fixed equaliser, no network) are the trivial baseline printed beside both: the
   classifier reads spectral balance, so an equaliser alone can score as well as the
   translator on it (issue 20).

3. With `--strengths 0,0.5,1,1.5`: the same content and classifier figures for `convert
   --strength S` at each S, the curve users choose from.

`--content-only` skips the vocoder table and the classifier; `--translator GENRE=PATH`
judges a translator checkpoint instead of the released one for GENRE.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from genreshift import ConvertOptions, Converter, pretrained
from genreshift.config import MelConfig
from genreshift.mel import log_mel

# benchmarks/, beside this script
import style_judge
from style_judge import load_manifest, middle  # the corpus manifest, a track's middle excerpt
from content import Transcriber, TranscriberMissing, content_kept, pooled
from genre_classifier import GenreClassifier, says_target, window_features
from vocoder_table import _met, print_vocoders

MEL = MelConfig()
Clips = dict[str, torch.Tensor]  # clip name -> mono audio at MEL.sample_rate


def train_classifier(corpus: Path, rows: list[dict], genres: list[str], seconds: float) -> GenreClassifier:
    feats, labels = [], []
    for row in rows:
        f = window_features(middle(corpus / row["path"], seconds))
        feats.append(f)
        labels += [genres.index(row["genre"])] * len(f)
    clf = GenreClassifier(genres).fit(torch.cat(feats), torch.tensor(labels))
    return clf


# -- content kept ------------------------------------------------------------------------------


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()).clamp(min=1e-9))


def envelope(audio: torch.Tensor) -> torch.Tensor:
    return log_mel(audio, MEL).mean(0)  # loudness over time, one value per frame


class ContentJudge:
    """The transcriber's figures (benchmarks/content.py) for clips against their inputs; each
    input is transcribed once, however many outputs are compared with it."""

    def __init__(self, transcriber: Transcriber):
        self.transcriber = transcriber
        self._inputs: dict[str, list] = {}

    def notes(self, audio: torch.Tensor) -> list:
        return self.transcriber.notes(audio.numpy(), MEL.sample_rate)

    def scores(self, clips: Clips, outputs: Clips) -> dict[str, float | None]:
        per_clip = []
        for name, audio in clips.items():
            if name not in self._inputs:
                self._inputs[name] = self.notes(audio)
            kept = content_kept(self._inputs[name], self.notes(outputs[name]), audio.shape[-1] / MEL.sample_rate)
            per_clip.append(kept | {"envelope_corr": correlation(envelope(audio), envelope(outputs[name]))})
        return {
            "pc_corr": pooled(per_clip, "pc_corr"),
            "note_f1": pooled(per_clip, "note_f1"),
            "envelope_corr": float(np.mean([c["envelope_corr"] for c in per_clip])),
        }


# -- translation table -------------------------------------------------------------------------


def convert_excerpts(genre: str, model: str | None, clips: Clips, vocoder: str, strength: float = 1.0) -> Clips:
    """Run the real Converter on the clips, in memory; returns the outputs."""
    conv = Converter(ConvertOptions(genre=genre, model=model, vocoder=vocoder, device="cpu", strength=strength))
    return {name: conv.convert_audio(audio, MEL.sample_rate) for name, audio in clips.items()}


def resynthesize(genre: str, model: str | None, clips: Clips, vocoder: str) -> Clips:
    """The same clips through mel and the same vocoder, *without* translation: the baseline
    that separates what the translator changes from what the vocoder changes."""
    net = Converter(ConvertOptions(genre=genre, model=model, vocoder=vocoder, device="cpu")).vocoder
    with torch.inference_mode():
        return {k: net(log_mel(a, MEL)[None])[0] for k, a in clips.items()}


def equalise(genre: str, model: str | None, clips: Clips, vocoder: str) -> Clips | None:
    """The clips through the translator's colour map alone (a fixed per-bin gain and
    contrast: an equaliser), no network, then the same vocoder: the trivial baseline a style
    judge must not be fooled by. None for a translator without a colour map."""
    conv = Converter(ConvertOptions(genre=genre, model=model, vocoder=vocoder, device="cpu"))
    colour = getattr(conv.translator, "colour", None)
    if colour is None:
        return None
    with torch.inference_mode():
        return {k: conv.vocoder(colour(log_mel(a, MEL)[None]))[0] for k, a in clips.items()}


def held_out_clips(corpus: Path, rows: list[dict], seconds: float) -> dict[str, tuple[str, torch.Tensor]]:
    """Every held-out track's excerpt, decoded once: name -> (genre, audio). Named by their
    corpus path, as two packages may hold tracks of the same name."""
    return {r["path"].rsplit(".", 1)[0].replace("/", "__"): (r["genre"], middle(corpus / r["path"], seconds))
            for r in rows if r["split"] == "val"}  # fmt: skip


def other_genres(clips: dict[str, tuple[str, torch.Tensor]], genre: str) -> Clips:
    """The held-out clips a translator to ``genre`` is judged on: those of the other genres."""
    others = {k: a for k, (g, a) in clips.items() if g != genre}
    if not others:
        raise SystemExit(f"--to {genre}: the corpus has no held-out track of another genre")
    return others


def translation_table(clips, translators, clf, vocoder, judge, style=None) -> dict[str, dict]:
    """Per genre (translators: genre -> checkpoint path or None for the released one), the
    held-out clips of the other genres: as they are, vocoder only, and converted. Without a
    classifier (``clf`` None) only the content figures; with a style judge, its verdicts."""
    out = {}
    for genre, model in translators.items():
        others = other_genres(clips, genre)
        resynth = resynthesize(genre, model, others, vocoder)
        converted = convert_excerpts(genre, model, others, vocoder)
        equalised = equalise(genre, model, others, vocoder)
        row = {"tracks": len(others), "model": model or "released"}
        row["vocoder_only"], row["converted"] = judge.scores(others, resynth), judge.scores(others, converted)
        row["kept"] = _share(row["converted"]["pc_corr"], row["vocoder_only"]["pc_corr"])
        if equalised is not None:
            row["equaliser"] = judge.scores(others, equalised)
        if clf is not None:
            target = clf.genres.index(genre)
            row["windows"] = sum(len(window_features(a)) for a in others.values())
            row["before"] = says_target(clf, target, list(others.values()))
            row["vocoder_only"]["says_target"] = says_target(clf, target, list(resynth.values()))
            row["converted"]["says_target"] = says_target(clf, target, list(converted.values()))
            if equalised is not None:
                row["equaliser"]["says_target"] = says_target(clf, target, list(equalised.values()))
        if style is not None:
            outputs = {"input": others, "vocoder_only": resynth, "converted": converted, "equaliser": equalised}
            row["judge"] = {k: style_judge.says_target(style, genre, list(clips_.values()))
                            for k, clips_ in outputs.items() if clips_ is not None}  # fmt: skip
        out[genre] = row
    return out


def print_translation(trans: dict[str, dict], vocoder: str) -> None:
    print(f"\nContent of held-out tracks of the other genres, input against output (vocoder: {vocoder})\n")
    print("| --to | tracks | pitch-class corr.: vocoder only | converted | kept (converted / vocoder only) "
          "| note F1: vocoder only | converted | envelope corr.: vocoder only | converted |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for g, r in trans.items():
        v, c = r["vocoder_only"], r["converted"]
        cells = [_fmt(v["pc_corr"]), _fmt(c["pc_corr"]), _fmt(r["kept"], percent=True), _fmt(v["note_f1"]),
                 _fmt(c["note_f1"]), _fmt(v["envelope_corr"]), _fmt(c["envelope_corr"])]  # fmt: skip
        print(f"| {g} | {r['tracks']} | " + " | ".join(cells) + " |")
    equalised = {g: r for g, r in trans.items() if "equaliser" in r}
    if equalised:
        print("\nThe translator's colour map alone (an equaliser; no network), then the same vocoder:\n")
        print("| --to | pitch-class corr.: equaliser alone | kept (/ vocoder only) | note F1 | envelope corr. |")
        print("|---|---|---|---|---|")
        for g, r in equalised.items():
            e = r["equaliser"]
            kept = _share(e["pc_corr"], r["vocoder_only"]["pc_corr"])
            print(
                f"| {g} | {_fmt(e['pc_corr'])} | {_fmt(kept, True)} | {_fmt(e['note_f1'])} | {_fmt(e['envelope_corr'])} |"
            )
    styled = {g: r for g, r in trans.items() if "before" in r}
    if styled:
        print("\n| --to | tracks | 3 s windows | classifier says the target: input | vocoder only | equaliser alone "
              "| converted | converted / input |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
        for g, r in styled.items():
            v, c = r["vocoder_only"], r["converted"]
            eq = _fmt(r["equaliser"]["says_target"], True) if "equaliser" in r else "n/a"
            cells = [_fmt(r["before"], True), _fmt(v["says_target"], True), eq, _fmt(c["says_target"], True)]
            print(f"| {g} | {r['tracks']} | {r['windows']} | " + " | ".join(cells)
                  + f" | {_ratio(c['says_target'], r['before'])} |")  # fmt: skip
    judged = {g: r for g, r in trans.items() if "judge" in r}
    if judged:
        print("\nThe style judge (benchmarks/style_judge.py) hears the target genre, share of tracks:\n")
        print("| --to | tracks | input | vocoder only | equaliser alone | converted |\n|---|---|---|---|---|---|")
        for g, r in judged.items():
            j = r["judge"]
            cells = [j["input"], j["vocoder_only"], j.get("equaliser"), j["converted"]]
            print(f"| {g} | {r['tracks']} | " + " | ".join(_fmt(c, True) for c in cells) + " |")
    print()
    for g, r in trans.items():
        print(verdict(g, r))


def strength_curve(
    clips, translators, translation, clf, vocoder, judge, strengths, style=None
) -> dict[str, list[dict]]:
    """Per genre, ``convert --strength S`` for each S: content kept (as a share of the
    table's vocoder-only figure) and, with a classifier, how often it hears the target.
    S = 1 is the table's own conversion and S = 0 the vocoder alone through convert's full
    path (segments, levelling, limiter), so that row reads near, not exactly, 100%."""
    out = {}
    for genre, model in translators.items():
        others, base = other_genres(clips, genre), translation[genre]
        rows = []
        for s in strengths:
            if s == 1.0:
                scores = dict(base["converted"])
                if "judge" in base:
                    scores["judge_says_target"] = base["judge"]["converted"]
            else:
                outputs = convert_excerpts(genre, model, others, vocoder, strength=s)
                scores = judge.scores(others, outputs)
                if clf is not None:
                    scores["says_target"] = says_target(clf, clf.genres.index(genre), list(outputs.values()))
                if style is not None:
                    scores["judge_says_target"] = style_judge.says_target(style, genre, list(outputs.values()))
            rows.append({"strength": s, "kept": _share(scores["pc_corr"], base["vocoder_only"]["pc_corr"])} | scores)
        out[genre] = rows
    return out


def print_strength_curve(curve: dict[str, list[dict]]) -> None:
    print("\nThe strength curve (convert --strength S), held-out clips of the other genres:\n")
    print("| --to | S | content kept (/ vocoder only) | note F1 | style judge hears the target (tracks) "
          "| classifier says the target (windows) |\n|---|---|---|---|---|---|")  # fmt: skip
    for genre, rows in curve.items():
        for r in rows:
            judged, said = _fmt(r.get("judge_says_target"), True), _fmt(r.get("says_target"), True)
            print(
                f"| {genre} | {r['strength']:g} | {_fmt(r['kept'], True)} | {_fmt(r['note_f1'])} | {judged} | {said} |"
            )


def parse_strengths(spec: str) -> list[float]:
    """``--strengths 0,0.5,1`` -> [0.0, 0.5, 1.0]; each within convert's range."""
    from genreshift.options import strength_problem

    try:
        values = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"--strengths {spec}: expected numbers separated by commas") from None
    for v in values:
        if strength_problem(v):
            raise SystemExit(f"--strengths: {strength_problem(v)}")
    return values


def verdict(genre: str, row: dict) -> str:
    """One line per genre against the targets: content kept >= 90% of the vocoder-only figure
    (issues 11 and 20); the classifier hears the target genre >= 2.5x as often as before
    (issue 11); the style judge hears it on >= 80% of the tracks and on <= 40% of them
    through the equaliser alone (issue 20)."""
    kept = row["kept"]
    ok = kept is not None and kept >= 0.9
    line = f"{genre}: keeps {_fmt(kept, True)} of the vocoder-only content (target >= 90%: {_met(ok)})"
    if "before" in row:
        after, before = row["converted"]["says_target"], row["before"]
        line += (f"; the classifier says {genre} in {_fmt(after, True)} of windows, {_fmt(before, True)} before "
                 f"({_ratio(after, before)}; target >= 2.5x: {_met(after > 0 and after >= 2.5 * before)})")  # fmt: skip
    if "judge" in row:
        j = row["judge"]
        line += f"; the style judge hears {genre} in {_fmt(j['converted'], True)} of tracks (target >= 80%: "
        line += f"{_met(j['converted'] >= 0.8)})"
        if "equaliser" in j:
            line += (
                f", the equaliser alone in {_fmt(j['equaliser'], True)} (target <= 40%: {_met(j['equaliser'] <= 0.4)})"
            )
    return line


def _share(part: float | None, whole: float | None) -> float | None:
    # A share of a figure that is not positive means nothing.
    return part / whole if part is not None and whole is not None and whole > 0 else None


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.0f}%" if percent else f"{value:.2f}"


def _ratio(after: float, before: float) -> str:
    return f"{after / before:.1f}x" if before > 0 else "n/a"


def parse_translators(specs: list[str], corpus_genres: list[str]) -> dict[str, str | None]:
    """``GENRE=PATH`` options -> {genre: path}; none given: every released genre of the corpus."""
    if not specs:
        return {g: None for g in corpus_genres if g in pretrained.known_genres()}
    out: dict[str, str | None] = {}
    for spec in specs:
        genre, sep, path = spec.partition("=")
        if not sep or genre not in corpus_genres or not Path(path).is_file():
            raise SystemExit(f"--translator {spec}: expected GENRE=PATH with GENRE one of {', '.join(corpus_genres)} "
                             "and PATH an existing translator checkpoint")  # fmt: skip
        out[genre] = path
    return out


def classifier(corpus: Path, rows: list[dict], genres: list[str], args) -> tuple[GenreClassifier, dict]:
    """The genre classifier, trained on the training tracks, and its accuracy on held-out ones."""
    clf = train_classifier(corpus, [r for r in rows if r["split"] == "train"], genres, args.train_seconds)
    acc = {}
    for g in genres:
        val = [middle(corpus / r["path"], args.seconds) for r in rows if r["split"] == "val" and r["genre"] == g]
        acc[g] = says_target(clf, genres.index(g), val)
    print("\nGenre classifier accuracy on held-out windows (unconverted): "
          + ", ".join(f"{g} {100 * a:.0f}%" for g, a in acc.items()))  # fmt: skip
    return clf, acc


def load_style_judge(spec: str, clips) -> tuple[style_judge.StyleJudge | None, dict]:
    """The saved style judge (or None for ``none``) and its check on the held-out clips,
    printed: its accuracy, and what it says of a random equaliser, silence and noise."""
    if spec == "none":
        return None, {}
    path = Path(spec)
    if not path.is_file():
        raise SystemExit(f"--style-judge {spec}: no such file (train one: python benchmarks/style_judge.py train "
                         "--corpus CORPUS --out PATH), or --style-judge none")  # fmt: skip
    judge, meta = style_judge.load_judge(path)
    print(f"\nStyle judge: {path} (sha256 {meta['sha256'][:16]}...)")
    result = style_judge.check(judge, list(clips.values()))
    style_judge.print_check(result, "The style judge on the held-out tracks, unconverted")
    return judge, result | {"sha256": meta["sha256"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=30.0, help="excerpt per track (middle)")
    ap.add_argument("--train-seconds", type=float, default=120.0, help="per training track, for the classifier")
    ap.add_argument("--vocoder", default="auto", help="vocoder used for the translation table")
    ap.add_argument(
        "--translator",
        action="append",
        default=[],
        metavar="GENRE=PATH",
        help="judge this translator checkpoint for GENRE (repeatable); default: the released ones",
    )
    ap.add_argument(
        "--content-only",
        action="store_true",
        help="only the content figures of the translation table (no vocoder table, no classifier)",
    )
    ap.add_argument(
        "--vocoder-file",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also measure this vocoder checkpoint in the vocoder table (repeatable)",
    )
    ap.add_argument(
        "--no-vocoders", action="store_true", help="skip the vocoder table (translators: content and classifier only)"
    )
    ap.add_argument("--visqol-seconds", type=float, default=10.0, help="ViSQOL on this much of each excerpt; 0: off")
    ap.add_argument("--vocoders-only", action="store_true", help="only the vocoder table")
    ap.add_argument("--int8", action="store_true",
                    help="vocoder table: fast vocoders in int8, as convert runs them on a CPU (default: float32)")  # fmt: skip
    ap.add_argument(
        "--strengths",
        type=parse_strengths,
        default=[],
        metavar="S,S,...",
        help="also print the strength curve: convert --strength S for each S (e.g. 0,0.5,1,1.5)",
    )
    ap.add_argument(
        "--style-judge",
        default=str(style_judge.DEFAULT_WEIGHTS),
        metavar="PATH|none",
        help="the style judge's weights (benchmarks/style_judge.py train); none: no style judge",
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()  # fmt: skip
    torch.manual_seed(0)
    rows = load_manifest(args.corpus)
    genres = sorted({r["genre"] for r in rows})
    translators = parse_translators(args.translator, genres)
    try:
        judge = ContentJudge(Transcriber())
    except TranscriberMissing as exc:
        raise SystemExit(str(exc)) from None

    clips = held_out_clips(args.corpus, rows, args.seconds)
    report: dict = {}
    clf = style = None
    if not args.content_only:
        if not args.no_vocoders:
            val_audio = [a for _, a in clips.values()]
            report["vocoders"] = print_vocoders(
                val_audio, args.seconds, args.visqol_seconds, args.vocoder_file, args.int8
            )
        if args.vocoders_only:
            if args.json:
                args.json.write_text(json.dumps(report, indent=1))
            return
        clf, report["classifier_acc"] = classifier(args.corpus, rows, genres, args)
        style, report["style_judge"] = load_style_judge(args.style_judge, clips)
    report["translation"] = translation_table(clips, translators, clf, args.vocoder, judge, style)
    print_translation(report["translation"], args.vocoder)
    if args.strengths:
        report["strength_curve"] = strength_curve(
            clips, translators, report["translation"], clf, args.vocoder, judge, args.strengths, style
        )
        print_strength_curve(report["strength_curve"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
