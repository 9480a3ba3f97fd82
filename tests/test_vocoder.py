from dataclasses import replace

import pytest
import torch

from genreshift.chunking import plan_windows, split, stitch
from genreshift.config import ChunkConfig, FastVocoderConfig, GriffinLimConfig, MelConfig, MelGANConfig, from_dict
from genreshift.mel import log_mel
from genreshift.vocoder import VOCODERS, WINDOW_FRAMES, FastVocoder, GriffinLim, MelGAN
from helpers import TINY_FAST

MEL = MelConfig()


def _music(seconds: float) -> torch.Tensor:
    t = torch.arange(int(seconds * 22050)) / 22050
    f = 220 * (1 + 0.5 * torch.sin(2 * torch.pi * 0.5 * t))
    return 0.3 * torch.sin(2 * torch.pi * torch.cumsum(f, 0) / 22050) + 0.01 * torch.randn_like(t)


def _snr_db(ref: torch.Tensor, x: torch.Tensor) -> float:
    """SNR of ``x`` against ``ref``, counting only ``ref``'s varying part as signal (a
    random-weight MelGAN puts out a large constant that would flatter the figure)."""
    ref, x = ref - ref.mean(), x - ref.mean()
    return float(10 * torch.log10(ref.pow(2).sum() / (ref - x).pow(2).sum().clamp(min=1e-20)))


def _lively_melgan() -> MelGAN:
    """A random MelGAN puts out an almost constant signal; doubling its weight norms makes it
    loud and input-dependent like a trained one, so the chunking tests mean something."""
    torch.manual_seed(0)
    net = MelGAN(MelGANConfig()).eval()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("weight_g"):
                p.mul_(2.0)
    return net


def _chunked(model, mel: torch.Tensor, context: int) -> torch.Tensor:
    plan = plan_windows(mel.shape[-1], ChunkConfig(64, 4, context))
    with torch.inference_mode():
        return stitch(model(split(mel, plan)), plan, scale=MEL.hop_length)


@pytest.mark.parametrize("model", [_lively_melgan, lambda: FastVocoder(FastVocoderConfig())])
def test_chunked_matches_whole_file(model):
    torch.manual_seed(0)
    net = model().eval()
    mel = log_mel(_music(3.0), MEL)
    with torch.inference_mode():
        whole = net(mel[None])[0]
    assert _snr_db(whole, _chunked(net, mel, net.context_frames)) > 40


def test_too_little_context_is_detectable():
    """The SNR test can fail: with no context the chunk edges differ from a whole-file pass."""
    net = _lively_melgan()
    mel = log_mel(_music(2.0), MEL)
    with torch.inference_mode():
        whole = net(mel[None])[0]
    assert _snr_db(whole, _chunked(net, mel, 0)) < 40


def test_melgan_state_dict_keys_match_melgan_neurips():
    """melgan-neurips Generator(80, ngf=32, n_residual_layers=3) has these keys."""
    keys = MelGAN(MelGANConfig()).state_dict().keys()
    expected = {"model.1.weight_g", "model.1.weight_v", "model.1.bias", "model.3.weight_g",
                "model.4.block.2.weight_g", "model.4.block.4.weight_v", "model.4.shortcut.weight_g",
                "model.6.block.2.weight_v", "model.24.weight_g", "model.24.bias"}  # fmt: skip
    assert expected <= set(keys)
    # 4 upsampling stages * (LeakyReLU, ConvT, 3 res blocks) + 2 input + 4 output layers
    assert max(int(k.split(".")[1]) for k in keys) == 24
    assert sum(p.numel() for p in MelGAN(MelGANConfig()).parameters()) == 4_260_257 + 5793


@pytest.mark.parametrize(
    "net",
    [
        MelGAN(MelGANConfig(ngf=4, n_residual_layers=1)),
        FastVocoder(TINY_FAST),
        GriffinLim(GriffinLimConfig(n_iter=4), MEL),
    ],
)
def test_every_vocoder_gives_hop_samples_per_frame(net):
    with torch.inference_mode():
        out = net(torch.randn(2, 80, 37) - 3)
    assert out.shape == (2, 37 * 256) and torch.isfinite(out).all()


def test_griffinlim_reconstructs_the_spectrum():
    audio = _music(2.0)
    mel = log_mel(audio, MEL)
    with torch.inference_mode():
        back = GriffinLim(GriffinLimConfig(n_iter=32), MEL)(mel[None])[0]
    assert back.shape == audio[: mel.shape[-1] * 256].shape
    err = (log_mel(back, MEL) - mel).abs().mean()
    assert err < 0.25, err  # log10 units; a random signal is > 1 away


def test_fast_vocoder_frames_align_with_the_mel():
    """Frames cut the way mel.py cuts them (frame i centred on hop*i + hop/2) go back through
    the iSTFT head to the same audio: the head's framing matches the front-end's."""
    net = FastVocoder(FastVocoderConfig(dim=8, intermediate_dim=8, n_blocks=0))
    audio = _music(1.0)[: 80 * 256]
    padded = torch.nn.functional.pad(audio[None, None], (384, 384), mode="reflect")[0, 0]
    spec = torch.stft(padded, 1024, 256, window=torch.hann_window(1024), center=False, return_complex=True)
    assert spec.shape[-1] == 80
    out = net._istft(spec[None])[0]
    assert out.shape == audio.shape
    inner = slice(1024, -1024)
    assert _snr_db(audio[inner], out[inner]) > 60


# -- fast vocoder v2: magnitude prior and Griffin-Lim refinement -------------------------------

V2 = FastVocoderConfig(dim=16, intermediate_dim=32, n_blocks=2, magnitude_prior=True, refine_iters=8, mel_iters=4)


def test_analyze_inverts_the_istft_head():
    net = FastVocoder(TINY_FAST)
    audio = _music(1.0)[: 80 * 256][None]
    spec = net.analyze(audio)
    assert spec.shape == (1, 513, 80)
    inner = slice(1024, -1024)
    assert _snr_db(audio[0, inner], net._istft(spec)[0, inner]) > 60


def test_mel_bands_match_moves_a_magnitude_to_the_target_mel():
    torch.manual_seed(0)
    bands = FastVocoder(V2).bands
    magnitude = torch.rand(1, 513, 20) ** 4
    target = log_mel(_music(1.0)[: 20 * 256], MEL)[None]

    def error(mag):
        mel = torch.einsum("fm,bft->bmt", bands.fb, mag).clamp(min=1e-5).log10()
        return float((mel - target).abs().mean())

    once = bands.match(magnitude, 10.0**target)
    assert error(once) < error(magnitude) / 3
    assert error(bands.match(once, 10.0**target)) < error(once)  # repeated (as Griffin-Lim does), it converges


def test_magnitude_prior_starts_at_the_spread_mel():
    """A new v2 net predicts no correction: its magnitude is the mel spread onto the bins."""
    net = FastVocoder(V2)
    mel = log_mel(_music(1.0), MEL)[None]
    magnitude, _ = net.spectrum(mel)
    assert torch.allclose(magnitude, net.bands.spread(10.0**mel).clamp(min=1e-5), rtol=1e-4)


def test_refinement_brings_the_output_to_the_input_mel():
    torch.manual_seed(0)
    audio = _music(2.0)[: 86 * 256]
    mel = log_mel(audio, MEL)[None]
    with torch.inference_mode():
        plain = FastVocoder(replace(V2, refine_iters=0, mel_iters=0)).eval()
        refined = FastVocoder(V2).eval()
        refined.load_state_dict(plain.state_dict())
        errors = [float((log_mel(net(mel)[0], MEL) - mel[0]).abs().mean()) for net in (plain, refined)]
    assert errors[1] < 0.1 < errors[0], errors  # log10 units


def test_refined_chunks_match_a_whole_file_pass():
    torch.manual_seed(0)
    net = FastVocoder(V2).eval()
    mel = log_mel(_music(3.0), MEL)
    with torch.inference_mode():
        whole = net(mel[None])[0]
    context = net.context_frames
    assert _snr_db(whole, _chunked(net, mel, context)) > 40
    assert _snr_db(whole, _chunked(net, mel, 2)) < 40  # ... and too little context shows


def test_context_grows_with_the_fast_vocoder():
    assert FastVocoder.context_for(FastVocoderConfig()) == 17
    assert FastVocoder.context_for(replace(FastVocoderConfig(), n_blocks=6)) == 23
    assert FastVocoder.context_for(replace(FastVocoderConfig(), n_blocks=6, refine_iters=1)) == 31
    assert FastVocoder(FastVocoderConfig()).context_frames == 17


@pytest.mark.parametrize("arch", sorted(VOCODERS))
def test_one_table_builds_every_vocoder_the_same_way(arch):
    """arch -> class; the class names its arch and config and carries its context, window
    length and CPU batch."""
    cls = VOCODERS[arch]
    net = cls(cls.config_class(), MEL)
    assert cls.arch == arch and isinstance(net.cfg, cls.config_class)
    assert net.context_frames >= 8 and net.cpu_batch >= 1
    assert net.carries_phase is False  # only an integrated-phase fast config carries it
    assert net.window_frames == WINDOW_FRAMES  # longer windows only when a fast config asks


def test_fast_vocoder_cpu_calls_hold_about_2048_frames():
    """Longer windows, fewer per CPU call: v2's 256-frame windows go 8 at a time (as before),
    v3's 1024-frame ones 2 at a time (faster and ~500 MB smaller than 8, docs/benchmarks.md)."""
    calls = {w: FastVocoder(FastVocoderConfig(window_frames=w), MEL).cpu_batch for w in (256, 512, 1024, 4096)}
    assert calls == {256: 8, 512: 4, 1024: 2, 4096: 1}


def test_griffinlim_refuses_the_old_call():
    with pytest.raises(TypeError, match="mel="):
        GriffinLim(MEL)


def test_a_v1_config_rebuilds_without_prior_or_refinement():
    v1 = {"n_mels": 80, "dim": 128, "intermediate_dim": 384, "n_blocks": 4, "kernel_size": 7, "n_fft": 1024,
          "hop_length": 256}  # fmt: skip
    cfg = from_dict(FastVocoderConfig, v1)
    assert (cfg.magnitude_prior, cfg.refine_iters, cfg.mel_iters) == (False, 0, 0)
    assert not hasattr(FastVocoder(cfg), "bands")


@pytest.mark.parametrize("frames", [1, 2, 5, 80])
def test_the_fast_overlap_add_gives_torch_istfts_output(frames):
    """``_istft`` replaces torch.istft for speed; v1/v2 outputs must not change."""
    net = FastVocoder(TINY_FAST)
    spec = torch.randn(3, 513, frames, dtype=torch.cfloat, generator=torch.Generator().manual_seed(frames))
    fast, reference = net._istft(spec), net._istft_torch(spec)
    assert fast.shape == reference.shape == (3, frames * 256)
    assert torch.allclose(fast, reference, atol=1e-6 * float(reference.abs().max()))


# -- refinement-free (v3): the net alone carries the phase ------------------------------------

V3 = replace(V2, refine_iters=0, mel_iters=0)


def test_a_refinement_free_vocoder_is_the_plain_net_in_eval_mode():
    torch.manual_seed(0)
    net = FastVocoder(V3).eval()
    mel = log_mel(_music(1.0), MEL)[None]
    with torch.inference_mode():
        magnitude, phase = net.spectrum(mel)
        assert torch.equal(net(mel), net._istft(torch.polar(magnitude, phase)))
    assert hasattr(net, "bands")  # the magnitude prior still needs the mel bands


def test_refinement_free_context_is_the_nets_own_and_chunks_match_exactly():
    six = replace(V3, n_blocks=6)
    assert FastVocoder.context_for(six) == 23 < FastVocoder.context_for(replace(six, refine_iters=8, mel_iters=4)) == 31
    torch.manual_seed(0)
    net = FastVocoder(six).eval()
    mel = log_mel(_music(3.0), MEL)
    with torch.inference_mode():
        whole = net(mel[None])[0]
    assert _snr_db(whole, _chunked(net, mel, FastVocoder.context_for(six))) > 80  # no refinement: exact
    assert _snr_db(whole, _chunked(net, mel, 4)) < 80  # ... and too little context shows


def test_longer_vocoder_windows_are_opt_in_and_change_nothing_without_refinement(served, tmp_path):
    """window_frames (v3) only moves where convert cuts; a refinement-free net gives the same audio."""
    import soundfile as sf
    from typer.testing import CliRunner

    from genreshift import ConvertOptions, Converter, checkpoint
    from genreshift.cli import app
    from genreshift.pipeline import vocoder_windows
    from helpers import tiny_vocoder, write_tone

    with pytest.raises(ValueError, match="window_frames"):
        FastVocoderConfig(window_frames=8)
    write_tone(tmp_path / "in" / "a.wav", 20.0)  # 1722 frames: several windows either way
    outputs = []
    for window in (256, 512):
        ckpt = tiny_vocoder("fast")
        ckpt.config = replace(ckpt.config, window_frames=window)
        checkpoint.save(ckpt, tmp_path / f"v{window}.pt")
        vocoder = Converter(ConvertOptions(genre="rock", vocoder=str(tmp_path / f"v{window}.pt"), device="cpu")).vocoder
        assert vocoder.window_frames == vocoder_windows(vocoder).size == window
        out = tmp_path / f"out{window}"
        args = [
            "convert",
            str(tmp_path / "in"),
            "--to",
            "rock",
            "-o",
            str(out),
            "--vocoder",
            str(tmp_path / f"v{window}.pt"),
            "--no-int8",  # int8 rounds each window by its own scale: exact only in float32
        ]
        assert CliRunner().invoke(app, [*args, "-q"]).exit_code == 0
        outputs.append(torch.from_numpy(sf.read(out / "a.wav", dtype="float32")[0]))
    assert _snr_db(outputs[0], outputs[1]) > 60


def _integrated_vocoder(path, window_frames: int, refine: int = 0) -> None:
    """A tiny integrated-phase vocoder file whose advance and offset rows are not the priors."""
    from genreshift import checkpoint
    from helpers import tiny_vocoder

    ckpt = tiny_vocoder("fast")
    ckpt.config = replace(ckpt.config, phase="integrated", window_frames=window_frames, refine_iters=refine,
                          mel_iters=refine, magnitude_prior=bool(refine))  # fmt: skip
    torch.manual_seed(1)
    net = FastVocoder(ckpt.config)
    with torch.no_grad():
        net.head.weight.normal_(0, 0.3)
    ckpt.state_dict = net.state_dict()
    checkpoint.save(ckpt, path)


def _convert_with(vocoder, folder, out, *extra) -> torch.Tensor:
    import soundfile as sf
    from typer.testing import CliRunner

    from genreshift.cli import app

    # --no-int8: int8 rounds each window by its own scale, so only float32 is cut-independent
    args = [
        "convert",
        str(folder),
        "--to",
        "rock",
        "-o",
        str(out),
        "--vocoder",
        str(vocoder),
        "-q",
        "--no-int8",
        *extra,
    ]
    assert CliRunner().invoke(app, args).exit_code == 0
    return torch.from_numpy(sf.read(out / "a.wav", dtype="float32")[0])


@pytest.mark.parametrize("refine", [0, 1])
def test_integrated_phase_chunks_carry_the_phase_and_match_a_whole_file_pass(served, tmp_path, monkeypatch, refine):
    """convert cuts a track into windows and carries the phase from each to the next: 64-frame
    windows give the audio of 1024-frame ones, with or without refinement."""
    from helpers import write_tone

    write_tone(tmp_path / "in" / "a.wav", 20.0)  # 1722 frames
    outputs = {}
    for window in (64, 1024):
        _integrated_vocoder(tmp_path / f"v{window}.pt", window, refine)
        outputs[window] = _convert_with(tmp_path / f"v{window}.pt", tmp_path / "in", tmp_path / f"out{window}")
    assert _snr_db(outputs[1024], outputs[64]) > 80
    # ... and the test can fail: windows that start their phase afresh differ.
    synthesize = FastVocoder.synthesize
    monkeypatch.setattr(FastVocoder, "synthesize", lambda self, f, mel, state, at: synthesize(self, f, mel, None, at))
    assert _snr_db(outputs[1024], _convert_with(tmp_path / "v64.pt", tmp_path / "in", tmp_path / "short")) < 80


def test_convert_runs_the_fast_vocoder_in_int8_on_a_cpu_unless_told_not_to(served, tmp_path):
    """The default: the blocks' pointwise layers in int8, close to float32 (its own windows'
    scales, so not bit-exact); --no-int8 gives the float32 audio."""

    from genreshift import ConvertOptions, Converter
    from genreshift.device import Int8Linear
    from helpers import write_tone

    write_tone(tmp_path / "in" / "a.wav", 6.0)
    _integrated_vocoder(tmp_path / "v.pt", 256)
    for int8 in (True, False):
        vocoder = Converter(
            ConvertOptions(genre="rock", vocoder=str(tmp_path / "v.pt"), device="cpu", int8=int8)
        ).vocoder
        assert any(isinstance(m, Int8Linear) for m in vocoder.modules()) == int8
    with_int8 = _convert_with(tmp_path / "v.pt", tmp_path / "in", tmp_path / "int8", "--int8")
    exact = _convert_with(tmp_path / "v.pt", tmp_path / "in", tmp_path / "float")
    # the phase is summed along the track, so the waveforms drift apart; the spectra do not
    mel_cfg = MelConfig()
    gap = (log_mel(exact, mel_cfg) - log_mel(with_int8, mel_cfg)).abs().mean()
    assert 0 < gap < 0.03, gap


def test_integrated_phase_keeps_turning_through_a_held_note():
    """A direct-phase net gives identical frames the same phase, so a held tone repeats every
    hop; the integrated net's phase turns by the advance every frame, whatever the net."""
    torch.manual_seed(0)
    net = FastVocoder(replace(TINY_FAST, phase="integrated")).eval()
    mel = torch.full((1, 80, 40), -2.0)  # a held note: every frame the same
    with torch.inference_mode():
        parts = net.parts(net.features(mel))
        _, phase = net.spectrum(mel)
    inner = slice(8, -8)  # frames whose neighbourhood is all held note (no zero padding)
    turn = torch.diff(phase, dim=-1)[..., inner] - parts["advance"][..., 1:][..., inner]
    assert torch.allclose(torch.remainder(turn + torch.pi, 2 * torch.pi) - torch.pi, torch.zeros(()), atol=1e-3)
    assert parts["advance"][..., inner].std() > 0.1  # ... and the turns differ between bins
    direct = FastVocoder(TINY_FAST).eval()
    with torch.inference_mode():
        _, phase = direct.spectrum(mel)
    assert torch.allclose(torch.diff(phase, dim=-1)[..., inner], torch.zeros(()), atol=1e-5)


def test_a_direct_phase_head_starts_an_integrated_net_with_its_magnitude():
    from genreshift.train.vocoder import _load

    torch.manual_seed(0)
    direct = FastVocoder(replace(TINY_FAST, magnitude_prior=True)).eval()
    with torch.no_grad():
        direct.head.weight.normal_(0, 0.1)
    integrated = FastVocoder(replace(TINY_FAST, magnitude_prior=True, phase="integrated")).eval()
    _load(integrated, direct.state_dict())
    mel = log_mel(_music(1.0), MEL)[None]
    with torch.inference_mode():
        assert torch.allclose(direct.spectrum(mel)[0], integrated.spectrum(mel)[0])
        advance = integrated.parts(integrated.features(mel))["advance"]
    assert torch.allclose(advance, integrated.bin_advance[:, None].expand_as(advance))


def test_a_batch_size_counts_256_frame_windows_so_longer_windows_batch_fewer(served, tmp_path, monkeypatch):
    """--batch-size 16 hands a 1024-frame vocoder 4 windows per batch (the frames, and the
    memory, of 16 v2 windows), and a 256-frame one 16; each still meets every window."""
    from genreshift import batching
    from genreshift.batching import windows_per_batch
    from helpers import write_tone

    assert [windows_per_batch(16, w) for w in (64, 256, 512, 1024, 4096)] == [16, 16, 8, 4, 1]
    assert windows_per_batch(1, 1024) == 1
    write_tone(tmp_path / "in" / "a.wav", 60.0)  # 5168 frames: 6 windows of 1024, 23 of 256
    sizes: list[tuple[int, int]] = []  # (the queue's batch size, windows its model got in one call)
    run = batching.BatchQueue._step

    def step(self):
        if not getattr(self, "spied", False):
            model, self.spied = self.model, True
            self.model = lambda batch, q=self: sizes.append((q.batch_size, len(batch))) or model(batch)
        return run(self)

    monkeypatch.setattr(batching.BatchQueue, "_step", step)
    for window, expected in ((1024, 4), (256, 16)):
        sizes.clear()
        _integrated_vocoder(tmp_path / f"v{window}.pt", window)
        _convert_with(tmp_path / f"v{window}.pt", tmp_path / "in", tmp_path / f"out{window}", "--batch-size", "16")
        vocode = [n for size, n in sizes if size == expected]
        assert vocode and max(n for _, n in sizes if _ == expected) <= expected, sizes
        assert {size for size, _ in sizes} == {16, expected}
