from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import LocalServer, build_weights

torch.set_num_threads(2)


def pytest_addoption(parser):
    parser.addoption(
        "--update-reference",
        action="store_true",
        help="rewrite tests/data/reference_outputs.npz.xz from this checkout's output (test_reference_output.py)",
    )


ENV = ["GENRESHIFT_WEIGHTS_URL", "GENRESHIFT_OFFLINE", "GENRESHIFT_REGISTRY", "GENRESHIFT_DEVICE"]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test sees the user's cache, models or settings."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GENRESHIFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GENRESHIFT_HOME", str(tmp_path / "home"))


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and the CPU is shared (training tests)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    build_weights(folder)
    return folder


@pytest.fixture
def server(weights_dir):
    with LocalServer(weights_dir) as srv:
        yield srv


@pytest.fixture
def served(server, weights_dir, monkeypatch):
    """Tiny weights for 'rock' and 'orchestral' served over HTTP from 127.0.0.1."""
    monkeypatch.setenv("GENRESHIFT_REGISTRY", str(weights_dir / "registry.json"))
    monkeypatch.setenv("GENRESHIFT_WEIGHTS_URL", server.url)
    return server
