"""Which device runs the models, and in which precision."""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

from .errors import DeviceError


def resolve_device(spec: str = "auto") -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; an explicit device must exist."""
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise DeviceError(f"unknown device '{spec}' (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{spec}' asked for, but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device '{spec}' asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type == "mps" and not _mps_available():
        raise DeviceError("device 'mps' asked for, but MPS is not available here")
    elif device.type not in {"cpu", "cuda", "mps"}:
        raise DeviceError(f"unsupported device '{spec}' (use auto, cpu, cuda, cuda:N or mps)")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def autocast_dtype(device: torch.device, bf16_supported: bool | None = None) -> torch.dtype | None:
    """Half precision for inference on CUDA (bf16 where the GPU has it, else fp16); none on CPU,
    where fp32 is both faster and exact."""
    if device.type != "cuda":
        return None
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16_supported else torch.float16


def inference_context(device: torch.device):
    """inference_mode, plus autocast where ``autocast_dtype`` says so."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    dtype = autocast_dtype(device)
    if dtype is not None:
        stack.enter_context(torch.autocast(device_type=device.type, dtype=dtype))
    return stack


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy to ``device``; on CUDA through pinned memory so the copy overlaps compute."""
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


class Int8Linear(nn.Module):
    """``nn.Linear`` with int8 weights (one scale per output channel) and activations
    quantized on the fly, for a CPU (fbgemm / qnnpack). Activations are quantized with one
    scale per tensor, so the layer runs one batch item (one vocoder window) at a time: a
    window's output then does not depend on which other windows share its batch."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        holder = nn.Sequential(linear)
        with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
            warnings.simplefilter("ignore")
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            self.quantized = quantize_dynamic(holder, {nn.Linear: per_channel_dynamic_qconfig}, inplace=False)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            return self.quantized(x)
        return torch.cat([self.quantized(item) for item in x.split(1)])


def int8_linears(module: nn.Module) -> int:
    """Replace every ``nn.Linear`` inside ``module`` by an ``Int8Linear``, in place; returns
    how many were replaced, 0 where this torch build has no quantized CPU engine (the module
    is then left in float32)."""
    if not torch.backends.quantized.supported_engines or torch.backends.quantized.engine == "none":
        return 0
    targets = [(parent, name, child) for parent in module.modules() for name, child in parent.named_children()
               if isinstance(child, nn.Linear)]  # fmt: skip
    try:
        replacements = [Int8Linear(child) for _, _, child in targets]
    except (ImportError, AttributeError, RuntimeError, AssertionError):
        return 0  # a torch without torch.ao.quantization, or an engine that cannot pack these weights
    for (parent, name, _), new in zip(targets, replacements):
        setattr(parent, name, new)
    return len(targets)
