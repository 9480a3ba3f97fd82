"""A small genre classifier for benchmarks/quality.py: does the converted audio sound like its genre?

Logistic regression on the mean and spread of each log-mel bin over 3 s windows. It sees
only coarse spectral statistics, which is also what a translator most easily moves.
"""

from __future__ import annotations

import torch

from genreshift.config import MelConfig
from genreshift.mel import log_mel

MEL = MelConfig()
WINDOW = 256  # classifier window in mel frames (~3 s)


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


def says_target(clf: GenreClassifier, target: int, audio: list[torch.Tensor]) -> float:
    return float((torch.cat([clf.predict(window_features(a)) for a in audio]) == target).float().mean())
