"""scripts/check_release.py: the release bookkeeping that scripts/release.sh checks before it tags."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_release.py"


@pytest.fixture(scope="module")
def checker():
    spec = importlib.util.spec_from_file_location("check_release", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def release(tmp_path) -> Path:
    """A copy of this checkout's package, CHANGELOG and weights: what a release is made of."""
    shutil.copytree(ROOT / "genreshift", tmp_path / "genreshift", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "CHANGELOG.md", tmp_path / "CHANGELOG.md")
    return tmp_path


def test_this_checkout_is_a_consistent_release(checker, release):
    """Everything but the one rule a checkout between releases breaks by design: entries
    under [Unreleased] (release.sh refuses them; the next test shows that it catches them)."""
    between_releases = "CHANGELOG.md: [Unreleased] still has entries"
    assert [p for p in checker.check(release, skip_git=True) if not p.startswith(between_releases)] == []


def test_entries_left_under_unreleased_are_caught(checker, release):
    log = release / "CHANGELOG.md"
    log.write_text(log.read_text().replace("## [Unreleased]\n", "## [Unreleased]\n\n### Added\n- something new\n", 1))
    assert any("[Unreleased] still has entries" in p for p in checker.check(release, skip_git=True))


def test_a_version_without_its_changelog_section_is_caught(checker, release):
    init = release / "genreshift" / "__init__.py"
    version = checker.version_of(release)
    major, minor, patch = version.split(".")
    init.write_text(init.read_text().replace(f'"{version}"', f'"{major}.{minor}.{int(patch) + 1}"'))
    problems = checker.check(release, skip_git=True)
    assert any(f"newest release section is {version}" in p for p in problems)


def test_a_registry_row_without_versions_or_with_a_wrong_hash_is_caught(checker, release):
    registry = release / "genreshift" / "weights" / "registry.json"
    data = json.loads(registry.read_text())
    del data["files"][0]["package_version"]
    data["files"][1]["sha256"] = "0" * 64
    data["files"][2]["package_version"] = "99.0.0"
    registry.write_text(json.dumps(data))
    problems = checker.check(release, skip_git=True)
    assert any("does not record its model version" in p for p in problems)
    assert any("does not match its size or sha256" in p for p in problems)
    assert any("99.0.0" in p for p in problems)
