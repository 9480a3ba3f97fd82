"""One error root: every exception genreshift defines is a GenreshiftError with an exit code."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from genreshift import errors
from genreshift.errors import GenreshiftError

ROOT = Path(__file__).resolve().parents[1]


def package_modules() -> list[str]:
    paths = (ROOT / "genreshift").rglob("*.py")
    names = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in paths]
    return sorted(n.removesuffix(".__init__") for n in names if not n.endswith("__main__"))


def test_every_exception_class_of_the_package_derives_from_the_root():
    defined = set()
    for name in package_modules():
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("genreshift"):
                defined.add(obj)
    assert len(defined) >= 9  # the ones errors.py lists, found through every module
    assert [c.__name__ for c in defined if not issubclass(c, GenreshiftError)] == []


@pytest.mark.parametrize(
    ("cls", "code"),
    [("AudioError", 1), ("CheckpointError", 1), ("WeightsError", 1), ("ModelError", 1), ("UnknownGenreError", 2),
     ("DeviceError", 2), ("TrainingError", 1)],
)  # fmt: skip
def test_exit_codes(cls, code):
    assert getattr(errors, cls)("x").exit_code == code


def test_old_homes_still_name_the_same_classes():
    from genreshift import audio, checkpoint, device, pretrained, registry
    from genreshift.train import loop

    assert audio.AudioError is errors.AudioError and checkpoint.CheckpointError is errors.CheckpointError
    assert registry.WeightsError is errors.WeightsError and device.DeviceError is errors.DeviceError
    assert pretrained.ModelError is errors.ModelError and loop.TrainingError is errors.TrainingError
    assert errors.Interrupted(3, Path("r/last.pt")).exit_code == 130
