"""Weights: cache, bundled copy, downloads from a 127.0.0.1 server, hashes, offline."""

from __future__ import annotations

import json
import shutil

import pytest

from genreshift import registry
from genreshift.registry import WeightsError
from helpers import LocalServer


def _rock() -> registry.Entry:
    return registry.find_entry("rock")


def test_download_once_then_cache(served, tmp_path):
    path = registry.fetch(_rock(), progress=False)
    assert path == tmp_path / "cache" / "rock-tiny.pt"
    assert registry.fetch(_rock(), progress=False) == path
    assert served.requests == ["/rock-tiny.pt"]


def test_corrupt_cached_file_is_fetched_again(served, tmp_path):
    path = registry.fetch(_rock(), progress=False)
    good = path.read_bytes()
    path.write_bytes(good[:100])
    assert registry.status(_rock()) == "corrupt"
    assert registry.fetch(_rock(), progress=False).read_bytes() == good
    assert len(served.requests) == 2


def test_truncated_download_is_an_error_that_says_what_to_do(weights_dir, tmp_path, monkeypatch):
    broken = tmp_path / "mirror"
    shutil.copytree(weights_dir, broken)
    data = (broken / "rock-tiny.pt").read_bytes()
    (broken / "rock-tiny.pt").write_bytes(data[: len(data) // 2])
    monkeypatch.setenv("GENRESHIFT_REGISTRY", str(weights_dir / "registry.json"))
    with LocalServer(broken) as srv:
        monkeypatch.setenv("GENRESHIFT_WEIGHTS_URL", srv.url)
        with pytest.raises(WeightsError, match="rock-tiny.pt: the download .* truncated or corrupt"):
            registry.fetch(_rock(), progress=False)
    assert not list((tmp_path / "cache").glob("rock-tiny.pt"))


def test_unreachable_server_names_the_file_and_the_fixes(weights_dir, monkeypatch):
    monkeypatch.setenv("GENRESHIFT_REGISTRY", str(weights_dir / "registry.json"))
    monkeypatch.setenv("GENRESHIFT_WEIGHTS_URL", "http://127.0.0.1:9/")
    with pytest.raises(WeightsError, match="rock-tiny.pt: could not download .*GENRESHIFT_WEIGHTS_URL"):
        registry.fetch(_rock(), progress=False)


def test_file_url_mirror(weights_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("GENRESHIFT_REGISTRY", str(weights_dir / "registry.json"))
    monkeypatch.setenv("GENRESHIFT_WEIGHTS_URL", weights_dir.as_uri())
    assert registry.fetch(_rock()).read_bytes() == (weights_dir / "rock-tiny.pt").read_bytes()


def test_offline_uses_cache_and_never_the_network(served, monkeypatch):
    registry.fetch(_rock(), progress=False)
    monkeypatch.setenv("GENRESHIFT_OFFLINE", "1")
    assert registry.fetch(_rock(), progress=False).is_file()
    with pytest.raises(WeightsError, match="GENRESHIFT_OFFLINE=1"):
        registry.fetch(registry.find_entry("orchestral"), progress=False)
    assert served.requests == ["/rock-tiny.pt"]


def test_bundled_copy_is_used_after_the_cache(weights_dir, tmp_path, monkeypatch):
    bundle = tmp_path / "bundle"
    shutil.copytree(weights_dir, bundle)
    monkeypatch.setattr(registry, "bundled_dir", lambda: bundle)
    monkeypatch.setenv("GENRESHIFT_REGISTRY", str(bundle / "registry.json"))
    monkeypatch.setenv("GENRESHIFT_OFFLINE", "1")
    assert registry.status(_rock()) == "bundled"
    assert registry.fetch(_rock()) == bundle / "rock-tiny.pt"
    (bundle / "rock-tiny.pt").write_bytes(b"tampered")  # a bad bundled copy is never trusted
    with pytest.raises(WeightsError):
        registry.fetch(_rock())


def test_every_entry_of_the_shipped_registry_is_complete():
    data = json.loads((registry.bundled_dir() / "registry.json").read_text())
    for row in data["files"]:
        entry = registry.Entry(**row)
        assert len(entry.sha256) == 64 and entry.size > 0 and entry.kind in {"translator", "vocoder"}
        assert entry.version and entry.package_version  # which model, shipped with which release
        if entry.kind == "translator":
            assert entry.genre


def test_cache_and_home_follow_the_environment(tmp_path):
    assert registry.cache_dir() == tmp_path / "cache"
    assert registry.user_models_dir() == tmp_path / "home" / "models"


def test_a_registry_with_keys_this_version_does_not_know_still_loads(tmp_path, monkeypatch):
    row = {"model": "rock", "file": "rock-v9.pt", "kind": "translator", "sha256": "0" * 64, "size": 1,
           "genre": "rock", "licence_url": "https://example.org"}  # fmt: skip
    (tmp_path / "r.json").write_text(json.dumps({"version": 1, "files": [row]}))
    monkeypatch.setenv("GENRESHIFT_REGISTRY", str(tmp_path / "r.json"))
    assert [e.file for e in registry.registry_entries()] == ["rock-v9.pt"]


def test_unreadable_registry_is_a_clear_error(tmp_path, monkeypatch):
    bad = tmp_path / "r.json"
    bad.write_text("{not json")
    monkeypatch.setenv("GENRESHIFT_REGISTRY", str(bad))
    with pytest.raises(WeightsError, match="unreadable model registry"):
        registry.registry_entries()
