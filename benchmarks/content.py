"""Musical content kept by a conversion, judged by a note transcriber that hears input and output.

An independent transcriber (Spotify's basic-pitch, its bundled ICASSP 2022 model run with
onnxruntime) turns each clip into notes. Two figures compare the notes of the input with
those of the output:

- **Pitch-class correlation.** Per window of ``WINDOW_S`` seconds, the notes sounding in it
  make a pitch-class profile (12 bins; each note adds its duration in the window times its
  amplitude to its pitch class). The Pearson correlation of the input's and the output's
  profile, averaged over the windows weighted by the input's note mass (the sum of its
  profile): a window of clear chords counts more than one with a single uncertain note
  among drums, where the transcription itself is unstable. Octaves do not count (a melody
  moved an octave keeps its harmony), a wrong chord does.
- **Note F1.** Notes matched one to one by pitch (within 50 cents) and onset (within 50 ms),
  offsets ignored (mir_eval's transcription F-measure). Stricter: octaves count here.

Over many clips both are pooled with the weight of each input's note mass (``pooled``).

The math (``pitch_class_profiles``, ``profile_correlation``) needs numpy only; ``Transcriber``
needs the ``benchmark`` extra (see docs/benchmarks.md for the install).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

WINDOW_S = 2.0
# basic-pitch's own defaults in `basic-pitch` and `predict()`.
ONSET_THRESHOLD = 0.5
FRAME_THRESHOLD = 0.3
MIN_NOTE_MS = 127.7
INSTALL = "pip install -e '.[benchmark]' && pip install --no-deps basic-pitch==0.4.0"


@dataclass(frozen=True)
class Note:
    start: float  # seconds
    end: float
    pitch: int  # MIDI note number
    amplitude: float  # 0..1, the transcriber's mean note activation


def pitch_class_profiles(notes: list[Note], duration: float, window: float = WINDOW_S) -> np.ndarray:
    """(windows, 12): per window, each pitch class's sum of note duration x amplitude.

    A partial last window counts if it is at least half a window long.
    """
    n = max(1, int(duration / window + 0.5))
    out = np.zeros((n, 12))
    for note in notes:
        first, last = int(note.start // window), min(n - 1, int(note.end // window))
        for w in range(first, last + 1):
            overlap = min(note.end, (w + 1) * window) - max(note.start, w * window)
            if overlap > 0:
                out[w, note.pitch % 12] += overlap * note.amplitude
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = np.linalg.norm(a) * np.linalg.norm(b)
    # An output window with no notes (or all 12 classes equal) kept none of the input's harmony.
    return float(a @ b / den) if den > 0 else 0.0


def profile_correlation(ref: np.ndarray, out: np.ndarray) -> float | None:
    """Per-window Pearson correlation of two (windows, 12) profiles, averaged with the weight of
    ``ref``'s note mass in each window; None if ``ref`` has no pitch-class profile anywhere."""
    n = min(len(ref), len(out))
    judged = [w for w in range(n) if np.ptp(ref[w]) > 0]
    if not judged:
        return None
    weights = ref[judged].sum(1)
    return float(np.average([_pearson(ref[w], out[w]) for w in judged], weights=weights))


def note_f1(ref: list[Note], out: list[Note]) -> float | None:
    """Note-level F-measure (onset within 50 ms, pitch within 50 cents, offsets ignored);
    None when the reference has no notes."""
    from mir_eval.transcription import precision_recall_f1_overlap

    if not ref:
        return None
    if not out:
        return 0.0

    def arrays(notes: list[Note]) -> tuple[np.ndarray, np.ndarray]:
        intervals = np.array([[n.start, max(n.end, n.start + 1e-3)] for n in notes])
        hz = 440.0 * 2.0 ** ((np.array([n.pitch for n in notes]) - 69) / 12)
        return intervals, hz

    (ri, rp), (oi, op) = arrays(ref), arrays(out)
    return float(precision_recall_f1_overlap(ri, rp, oi, op, onset_tolerance=0.05, offset_ratio=None)[2])


class TranscriberMissing(RuntimeError):
    """basic-pitch (or its ONNX runtime) is not installed."""


class Transcriber:
    """basic-pitch's note transcription of mono float audio, on onnxruntime (no TensorFlow)."""

    def __init__(self, threads: int | None = None):
        try:
            # basic_pitch logs a warning for each backend it does not find (TensorFlow,
            # CoreML, TFLite); only the ONNX one is used here.
            logging.disable(logging.WARNING)
            import onnxruntime as ort
            from basic_pitch import FilenameSuffix, build_icassp_2022_model_path, constants, inference, note_creation
        except ImportError as exc:
            raise TranscriberMissing(f"the content measure needs basic-pitch ({exc}); install: {INSTALL}") from exc
        finally:
            logging.disable(logging.NOTSET)
        self._c, self._inference, self._notes = constants, inference, note_creation
        opts = ort.SessionOptions()
        # The benchmark shares a small CPU: follow OMP_NUM_THREADS, as torch does.
        opts.intra_op_num_threads = threads or int(os.environ.get("OMP_NUM_THREADS", "0"))
        opts.inter_op_num_threads = 1
        path = build_icassp_2022_model_path(FilenameSuffix.onnx)
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    @property
    def sample_rate(self) -> int:
        return self._c.AUDIO_SAMPLE_RATE

    def posteriors(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """basic-pitch's frame activations ("note", "onset": (frames, 88); "contour": (frames,
        264)) for mono audio at ``sample_rate``: its own windowing (2 s, 30 frames of overlap)."""
        c, inf = self._c, self._inference
        n_overlap = 30
        overlap = n_overlap * c.FFT_HOP
        padded = np.concatenate([np.zeros(overlap // 2, np.float32), audio.astype(np.float32)])
        windows = np.stack([w for w, _ in inf.window_audio_file(padded, c.AUDIO_N_SAMPLES - overlap)])
        names = ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2", "StatefulPartitionedCall:0"]
        feed = "serving_default_input_2:0"
        parts = [self._session.run(names, {feed: windows[i : i + 16]}) for i in range(0, len(windows), 16)]
        return {
            key: inf.unwrap_output(np.concatenate([p[k] for p in parts]), len(audio), n_overlap)
            for k, key in enumerate(["note", "onset", "contour"])
        }

    def notes(self, audio: np.ndarray, sample_rate: int) -> list[Note]:
        """The notes basic-pitch hears in mono float audio, with its default thresholds."""
        if sample_rate != self.sample_rate:
            import librosa

            audio = librosa.resample(audio.astype(np.float32), orig_sr=sample_rate, target_sr=self.sample_rate)
        frames_per_s = self.sample_rate / self._c.FFT_HOP
        _, events = self._notes.model_output_to_notes(
            self.posteriors(audio),
            onset_thresh=ONSET_THRESHOLD,
            frame_thresh=FRAME_THRESHOLD,
            min_note_len=int(round(MIN_NOTE_MS / 1000 * frames_per_s)),
            include_pitch_bends=False,
        )
        return [Note(float(s), float(e), int(p), float(a)) for s, e, p, a, _ in events]


def content_kept(ref: list[Note], out: list[Note], duration: float) -> dict[str, float | None]:
    """Both figures for one clip, input notes ``ref`` against output notes ``out``, and the
    input's note mass: the weight of this clip when clips are pooled (``pooled``)."""
    ref_prof = pitch_class_profiles(ref, duration)
    return {
        "pc_corr": profile_correlation(ref_prof, pitch_class_profiles(out, duration)),
        "note_f1": note_f1(ref, out),
        "note_mass": float(ref_prof.sum()),
    }


def pooled(clips: list[dict[str, float | None]], key: str) -> float | None:
    """``key`` over clips weighted by their input note mass, as if all their windows were one
    clip: a clip of drums and noise with a few uncertain notes counts little."""
    judged = [(c[key], c["note_mass"]) for c in clips if c[key] is not None and c["note_mass"] > 0]
    if not judged:
        return None
    return float(np.average([v for v, _ in judged], weights=[w for _, w in judged]))
