import pytest
import torch

from genreshift import device as dev
from genreshift.batching import BatchQueue, Job


def test_auto_falls_back_to_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    assert dev.resolve_device("auto") == torch.device("cpu")


def test_auto_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.resolve_device("auto") == torch.device("cuda")


def test_cuda_index_is_checked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert dev.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(dev.DeviceError, match="only 2 CUDA"):
        dev.resolve_device("cuda:5")


def test_missing_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(dev.DeviceError, match="CUDA is not available"):
        dev.resolve_device("cuda")
    with pytest.raises(dev.DeviceError):
        dev.resolve_device("quantum")


def test_half_precision_only_on_cuda():
    assert dev.autocast_dtype(torch.device("cpu")) is None
    assert dev.autocast_dtype(torch.device("cuda"), bf16_supported=True) == torch.bfloat16
    assert dev.autocast_dtype(torch.device("cuda"), bf16_supported=False) == torch.float16


def test_batches_mix_windows_of_many_tracks():
    seen = []

    def model(x):
        seen.append(x.shape[0])
        return x * 2

    q = BatchQueue(model, batch_size=4, device=torch.device("cpu"))
    jobs = [Job(torch.full((n, 3), float(i)), i) for i, n in enumerate([1, 2, 3, 1])]
    for j in jobs:
        q.add(j)
    done = q.run() + q.run(flush=True)
    assert seen == [4, 3]  # tracks 0, 1 and the first of 2 share the first batch
    assert [j.payload for j in done] == [0, 1, 2, 3]
    for i, j in enumerate(done):
        assert torch.equal(j.result(), torch.full((len(j.windows), 3), 2.0 * i))


def test_batch_memory_is_bounded_by_batch_size():
    sizes = []
    q = BatchQueue(lambda x: sizes.append(x.shape[0]) or x, batch_size=8, device=torch.device("cpu"))
    q.add(Job(torch.zeros(1000, 2), "long"))
    q.run(flush=True)
    assert max(sizes) == 8 and sum(sizes) == 1000


def test_int8_linear_is_close_and_each_window_keeps_its_own_scale():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96)
    q = dev.Int8Linear(linear)
    x = torch.randn(3, 50, 64)
    x[2] *= 20  # a loud window in the batch must not coarsen the others' rounding
    with torch.no_grad():
        exact, out = linear(x), q(x)
        alone = torch.cat([q(x[i : i + 1]) for i in range(3)])
    assert torch.equal(out, alone)
    error = (out - exact).norm() / exact.norm()
    assert 0 < error < 0.02  # really int8, and close


def test_int8_linears_replaces_every_linear_and_the_vocoder_stays_close():
    from dataclasses import replace

    from genreshift.vocoder import FastVocoder
    from helpers import TINY_FAST

    torch.manual_seed(0)
    net = FastVocoder(replace(TINY_FAST, phase="integrated", refine_iters=0, mel_iters=0)).eval()
    torch.nn.init.normal_(net.head.weight, std=0.02)
    mel = torch.randn(2, 80, 40) * 0.5 - 3
    with torch.no_grad():
        exact = net(mel)
        assert net.use_int8()
        out = net(mel)
    assert not any(isinstance(m, torch.nn.Linear) for m in net.blocks.modules())
    assert isinstance(net.head, torch.nn.Linear)  # the head stays float32
    assert 0 < (out - exact).norm() / exact.norm() < 0.05


@pytest.mark.parametrize(
    "failure",
    [RuntimeError("Didn't find engine for operation quantized::linear_prepack NoQEngine"),
     ImportError("cannot import name 'quantize_dynamic' from 'torch.ao.quantization'")],
)  # fmt: skip
def test_an_engine_that_cannot_quantize_leaves_the_model_float(monkeypatch, failure):
    def cannot(linear):
        raise failure

    monkeypatch.setattr(dev, "Int8Linear", cannot)
    module = torch.nn.Sequential(torch.nn.Linear(4, 4))
    assert dev.int8_linears(module) == 0
    assert isinstance(module[0], torch.nn.Linear)
