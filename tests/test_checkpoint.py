import pickle

import pytest
import torch

from genreshift import checkpoint
from genreshift.checkpoint import CheckpointError
from genreshift.translator import Generator
from helpers import TINY_TRANSLATOR, tiny_translator, tiny_vocoder


def test_round_trip_rebuilds_the_same_model(tmp_path):
    ckpt = tiny_translator("rock")
    checkpoint.save(ckpt, tmp_path / "m.pt")
    back = checkpoint.load(tmp_path / "m.pt")
    assert (back.kind, back.arch, back.config, back.mel, back.genres) == (
        "translator",
        "travelgan",
        TINY_TRANSLATOR,
        ckpt.mel,
        ["rock"],
    )
    x = torch.randn(1, 80, 40) - 3
    with torch.no_grad():
        ref = Generator(TINY_TRANSLATOR)
        ref.load_state_dict(ckpt.state_dict)
        assert torch.allclose(back.build()(x), ref(x))


def test_half_precision_release_files_load_as_float32(tmp_path):
    checkpoint.save(tiny_vocoder("melgan"), tmp_path / "v.pt", half=True)
    raw = torch.load(tmp_path / "v.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    model = checkpoint.load(tmp_path / "v.pt").build()
    assert all(p.dtype == torch.float32 for p in model.parameters())


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_code_in_a_checkpoint_is_never_run(tmp_path, capsys):
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"format": "genreshift", "x": Evil()}, f)
    with pytest.raises(CheckpointError, match="evil.pt: not a readable genreshift checkpoint"):
        checkpoint.load(tmp_path / "evil.pt")
    assert "code ran" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "data,message",
    [({"a": 1}, "not a genreshift checkpoint"), ({"format": "genreshift", "kind": "x", "arch": "y"}, "unknown model"),
     ({"format": "genreshift", "format_version": 99}, "newer than this genreshift")],
)  # fmt: skip
def test_bad_contents_are_named(tmp_path, data, message):
    torch.save(data, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(tmp_path / "c.pt")


def test_garbage_and_missing_files(tmp_path):
    (tmp_path / "g.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="g.pt: not a readable"):
        checkpoint.load(tmp_path / "g.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        checkpoint.load(tmp_path / "missing.pt")


def test_atomic_save_leaves_no_partial_file(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(RuntimeError):
        checkpoint.atomic_save({"a": 1}, tmp_path / "x.pt")
    assert list(tmp_path.iterdir()) == []
