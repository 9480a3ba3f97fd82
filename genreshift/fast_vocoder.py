"""Log-mel -> waveform by a small net and an iSTFT (Vocos-style): the default vocoder.

The net runs at the frame rate and predicts STFT magnitude and phase (v1, v2) or how each
bin's phase turns (v3, ``phase.py``); ``MelBands`` moves between mel bands and STFT bins
for the magnitude prior and the Griffin-Lim refinement.
"""

from __future__ import annotations

import torch
from torch import nn

from . import device, phase
from .config import FastVocoderConfig, MelConfig
from .mel import filterbank


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.transpose(1, 2)


class FastVocoder(nn.Module):
    """Vocos-style vocoder: (B, n_mels, T) -> (B, T * hop).

    All layers run at the frame rate (86 frames/s), and the last step is ``torch.istft``,
    which is why it is cheap on a CPU. The head predicts log-magnitude and phase.

    Options of ``FastVocoderConfig`` (v2) make a small net trained on a CPU beat plain
    Griffin-Lim. ``magnitude_prior`` adds the input mel, spread back onto the STFT bins, to
    the predicted log-magnitude, so the net learns only the fine structure a mel band hides.
    At inference, ``refine_iters`` Griffin-Lim iterations start from the predicted phase
    (not a random one) and move the output's STFT toward the predicted magnitude, scaled so
    its mel is the input mel; ``mel_iters`` more then let the fine structure settle while
    keeping the mel equal to the input's.
    """

    arch, config_class, has_weights = "fast", FastVocoderConfig, True
    # Mel frames per call on a CPU. 256-frame windows (v1, v2): ms per window at 1 / 2 / 4 / 16
    # windows per call on a 2-core CPU: 8.5 / 11 / 10 / 8.8 (flat; 8 saves ~65 MB over 16); v2
    # with its refinement, at 1 / 2 / 4 / 8: 83 / 93 / 96 / 94. 1024-frame windows (v3 + 1 + 1,
    # benchmarks/speed.py stage): 168x / 171x / 162x / 137x real time at 1 / 2 / 4 / 8 windows
    # per call, peaking at 1,093 / 1,127 / 1,292 / 1,668 MB. So about 2,048 frames per call.
    cpu_frames = 2048

    @property
    def cpu_batch(self) -> int:
        """Windows per call on a CPU: as many as make ``cpu_frames`` (8 of 256 frames)."""
        return max(1, self.cpu_frames // self.cfg.window_frames)

    @staticmethod
    def context_for(cfg: FastVocoderConfig) -> int:
        """Mel frames of context on each side of a chunk.

        The net sees 3 frames (embedding) plus kernel_size // 2 per block, and the iSTFT
        overlaps 2 more. The Griffin-Lim refinement spreads further, but that influence fades
        fast: 8 more frames keep chunked output within 40 dB of a whole-file pass
        (tests/test_vocoder.py). Never below 16.
        """
        reach = 3 + cfg.n_blocks * (cfg.kernel_size // 2)
        if cfg.phase == "integrated":
            # A window's synthesis starts up to a scan block before its lead, and the net's
            # output there must already be exact: the phase carries any error on.
            return max(16, reach + FastVocoder.lead_for(cfg) + phase.BLOCK - 1)
        refine = 8 if cfg.refine_iters or cfg.mel_iters else 0
        return max(16, reach + 2 + refine)

    @staticmethod
    def lead_for(cfg: FastVocoderConfig) -> int:
        """Integrated phase: frames before a chunk's first output frame that its synthesis
        needs: the iSTFT of the frame 2 before it reaches it (n_fft = 4 hops), and the
        refinement spreads 8 frames further (see ``context_for``)."""
        return cfg.n_fft // cfg.hop_length // 2 + (8 if cfg.refine_iters or cfg.mel_iters else 0)

    @property
    def context_frames(self) -> int:
        return self.context_for(self.cfg)

    @property
    def window_frames(self) -> int:
        return self.cfg.window_frames

    def __init__(self, cfg: FastVocoderConfig, mel: MelConfig | None = None):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.n_mels, cfg.dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            [ConvNeXtBlock(cfg.dim, cfg.intermediate_dim, cfg.kernel_size) for _ in range(cfg.n_blocks)]
        )
        self.final_norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        bins = cfg.n_fft // 2 + 1
        # direct: log-magnitude and phase; integrated: log-magnitude, advance and offset (phase.py)
        self.head = nn.Linear(cfg.dim, bins * (3 if self.carries_phase else 2))
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        if self.carries_phase:
            self.register_buffer("bin_advance", phase.bin_advance(cfg.n_fft, cfg.hop_length), persistent=False)
            self.register_buffer("bin_offset", phase.bin_offset(cfg.n_fft), persistent=False)
            with torch.no_grad():  # start at the priors: each bin turns at its centre frequency
                self.head.weight[bins:].zero_()
                self.head.bias[bins:].zero_()
        if cfg.magnitude_prior or cfg.refine_iters or cfg.mel_iters:
            self.bands = MelBands(mel or MelConfig(), cfg)
        if cfg.magnitude_prior:
            with torch.no_grad():  # start from the prior itself: a zero correction
                self.head.weight[:bins].zero_()
                self.head.bias[:bins].zero_()

    def use_int8(self) -> bool:
        """For a CPU: the blocks' pointwise layers, most of the net's arithmetic, in int8
        (``device.Int8Linear``), in place. The head stays float32: its advance and offsets
        are summed along the track, so their rounding would add up (quantizing it too measured
        3% worse log-mel L1 for v3, the blocks alone 1%; docs/benchmarks.md). False where
        this torch has no quantized CPU engine."""
        return device.int8_linears(self.blocks) > 0

    @property
    def carries_phase(self) -> bool:
        """True for an integrated-phase net: chunks of one track must then be synthesised in
        order, each from the state the one before left (``synthesize``)."""
        return self.cfg.phase == "integrated"

    @property
    def synthesis_lead(self) -> int:
        return self.lead_for(self.cfg)

    def forward(self, mel: torch.Tensor, with_spectrum: bool = False, refine: bool | None = None):
        """Audio; with ``with_spectrum`` (training) also a dict of the predicted ``magnitude``
        and ``phase`` (and, integrated, ``advance``, ``offset`` and the complex ``spectrum``
        before refinement), (B, F, T) each. The config's Griffin-Lim refinement runs at
        inference, and in training too with ``refine=True`` (gradients flow through it)."""
        parts = self.parts(self.features(mel))
        spec, _ = self._spectrum_of(parts)
        if with_spectrum and self.carries_phase:
            parts["phase"], parts["spectrum"] = spec.angle(), spec
        if self._refines(refine):
            spec = self._refine(spec, mel.float())
        audio = self._istft(spec)
        return (audio, parts) if with_spectrum else audio

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """The net's output, (B, 2F, T) direct or (B, 3F, T) integrated, priors added: the
        part of the vocoder that windows of many tracks can share a batch for."""
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        x = self.head(self.final_norm(x.transpose(1, 2))).transpose(1, 2).float()
        bins = self.cfg.n_fft // 2 + 1
        # The priors are added in place: two copies of the whole output (~7 MB a 1024-frame
        # window) cost about 4% of convert's time. Autograd allows it: the head's backward
        # does not need its output.
        if self.cfg.magnitude_prior:
            x[:, :bins] += self._prior(mel.float())
        if self.carries_phase:
            x[:, bins : 2 * bins] += self.bin_advance[:, None]
            x[:, 2 * bins :] += self.bin_offset[:, None]
        return x

    def parts(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """``features`` by name: ``magnitude`` and ``phase``, or ``magnitude``, ``advance`` and
        ``offset``."""
        names = ("magnitude", "advance", "offset") if self.carries_phase else ("magnitude", "phase")
        parts = dict(zip(names, features.chunk(len(names), dim=1)))
        parts["magnitude"] = torch.exp(parts["magnitude"]).clamp(max=1e2)
        return parts

    def synthesize(self, features: torch.Tensor, mel: torch.Tensor, state: torch.Tensor | None = None,
                   state_at: int = -1):  # fmt: skip
        """Integrated phase: audio from ``features`` of consecutive frames of one track and
        their ``mel`` (for the refinement, when the config asks for it), (B, 3F, T) and
        (B, n_mels, T) -> (B, T * hop), and the state to go on from after frame ``state_at``
        (before refinement). ``state`` is such a state for the frame just before these, None
        at the start of the track."""
        spec, state = self._spectrum_of(self.parts(features), state, state_at)
        if self._refines():
            spec = self._refine(spec, mel.float())
        return self._istft(spec), state

    def _refines(self, refine: bool | None = None) -> bool:
        """Whether the Griffin-Lim refinement runs: the config asks for iterations, and this
        is inference (``refine`` None) or ``refine`` says so (training through it)."""
        asked = not self.training if refine is None else refine
        return asked and bool(self.cfg.refine_iters or self.cfg.mel_iters)

    def spectrum(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted STFT magnitude and phase, (B, n_fft // 2 + 1, T) each."""
        parts = self.parts(self.features(mel))
        if self.carries_phase:
            return parts["magnitude"], self._spectrum_of(parts)[0].angle()
        return parts["magnitude"], parts["phase"]

    def _spectrum_of(self, parts: dict[str, torch.Tensor], state: torch.Tensor | None = None, state_at: int = -1):
        """The complex spectrum of ``parts``, and (integrated) the state after ``state_at``."""
        if self.carries_phase:
            return phase.integrate(parts["magnitude"], parts["advance"], parts["offset"], state, state_at)
        return torch.polar(parts["magnitude"], parts["phase"]), None

    def _prior(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.log(self.bands.spread(10.0**mel).clamp(min=1e-5))

    def analyze(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T * hop) -> (B, F, T) complex: the inverse of the iSTFT step, same framing."""
        hop = self.cfg.hop_length
        frames = audio.shape[-1] // hop
        padded = torch.nn.functional.pad(audio, (hop // 2, 0))
        spec = torch.stft(padded, self.cfg.n_fft, hop, window=self.window, center=True, return_complex=True)
        return spec[..., 1 : frames + 1]  # frame j of the padded signal is centred on hop * (j - 1) + hop / 2

    def _refine(self, spec: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        level = 10.0**mel  # once, not in every mel iteration
        target = self.bands.match(spec.abs(), level)
        spec = self._griffin_lim(spec, lambda rebuilt: target, self.cfg.refine_iters)
        return self._griffin_lim(spec, lambda rebuilt: self.bands.match(rebuilt.abs(), level), self.cfg.mel_iters)

    def _griffin_lim(self, spec: torch.Tensor, magnitude_of, n_iter: int) -> torch.Tensor:
        """Fast Griffin-Lim (momentum 0.99, as torchaudio's) from ``spec`` instead of a random
        phase; ``magnitude_of(rebuilt STFT)`` gives each iteration's target magnitude."""
        momentum = 0.99 / 1.99
        previous = torch.zeros_like(spec)
        for _ in range(n_iter):
            rebuilt = self.analyze(self._istft(spec))
            angles = rebuilt - momentum * previous
            previous = rebuilt
            spec = magnitude_of(rebuilt) * torch.sgn(angles)  # sgn(z) = z / |z|, 0 at 0; 2.5x faster than dividing
        return spec

    def _istft(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, F, T) complex -> (B, T * hop), frame i centred on sample hop * i + hop / 2.

        The output of ``_istft_torch`` (to float rounding), about twice as fast on a CPU: with
        n_fft a multiple of hop, each windowed frame is n_fft / hop blocks of hop samples, and
        adding that many shifted block arrays is cheaper than torch.istft's general
        overlap-add. Divided, as torch.istft does, by the overlap-added squared window,
        counting the silent frame in front that ``_istft_torch`` adds.
        """
        n_fft, hop = self.cfg.n_fft, self.cfg.hop_length
        if n_fft % hop:
            return self._istft_torch(spec)
        frames = torch.fft.irfft(spec.transpose(1, 2), n=n_fft, dim=-1) * self.window  # (B, T, n_fft)
        squared = (self.window**2).expand(1, frames.shape[1] + 1, n_fft)
        start = n_fft // 2 - hop // 2  # where frame 0's centre minus half a hop falls in the sum
        audio = self._overlap_add(frames)[:, start:]
        envelope = self._overlap_add(squared)[:, start + hop :]  # its first frame is the silent one
        length = spec.shape[-1] * hop
        return audio[:, :length] / envelope[:, :length]

    def _overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, n_fft) -> (B, (T - 1) * hop + n_fft): frame i added in at sample hop * i."""
        hop, batch, count = self.cfg.hop_length, frames.shape[0], frames.shape[1]
        blocks = self.cfg.n_fft // hop
        pieces = frames.reshape(batch, count, blocks, hop)
        out = frames.new_zeros(batch, count + blocks - 1, hop)
        for j in range(blocks):
            out[:, j : j + count] += pieces[:, :, j]
        return out.flatten(1)

    def _istft_torch(self, spec: torch.Tensor) -> torch.Tensor:
        """``_istft`` by torch.istft, which centres frame i on hop * i: a silent frame in front
        shifts every frame by one hop, and cutting half a hop gives the MelGAN framing of the
        mel front-end."""
        hop = self.cfg.hop_length
        frames = spec.shape[-1]
        spec = torch.cat([spec.new_zeros(*spec.shape[:-1], 1), spec], dim=-1)
        audio = torch.istft(spec, self.cfg.n_fft, hop, window=self.window, center=True, length=(frames + 1) * hop)
        return audio[..., hop // 2 : hop // 2 + frames * hop]


class MelBands(nn.Module):
    """Moves between magnitude mel bands and STFT bins (no weights, buffers only)."""

    def __init__(self, mel: MelConfig, cfg: FastVocoderConfig):
        super().__init__()
        if (mel.n_fft, mel.n_mels) != (cfg.n_fft, cfg.n_mels):
            raise ValueError(f"the mel's n_fft/n_mels ({mel.n_fft}/{mel.n_mels}) differ from the vocoder's")
        fb = filterbank(mel)  # (F, n_mels)
        self.register_buffer("fb", fb, persistent=False)
        # A bin's share of each band it belongs to; a flat spectrum of level c gives band m
        # the mel value c * (sum of its filter), so width turns a band value into a level.
        self.register_buffer("share", fb / fb.sum(1, keepdim=True).clamp(min=1e-8), persistent=False)
        self.register_buffer("width", fb.sum(0).clamp(min=1e-8)[:, None], persistent=False)
        self.floor = mel.log_floor

    def to_bins(self, per_band: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) -> (B, F, T): each bin takes its bands' values by its share."""
        return torch.einsum("fm,bmt->bft", self.share, per_band)

    def spread(self, mel_magnitude: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) mel -> (B, F, T): the flattest magnitude with those band levels."""
        return self.to_bins(mel_magnitude / self.width)

    def match(self, magnitude: torch.Tensor, mel_magnitude: torch.Tensor) -> torch.Tensor:
        """``magnitude`` with each bin scaled so its mel moves to ``mel_magnitude`` (linear, not
        log), fine structure kept."""
        current = torch.einsum("fm,bft->bmt", self.fb, magnitude).clamp(min=self.floor)
        return magnitude * self.to_bins(mel_magnitude / current)
