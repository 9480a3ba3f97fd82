"""Check that a checkout is ready to be released as the version it declares.

    python scripts/check_release.py [--repo DIR] [--skip-git]

Prints one line per check and exits 1 if any fails. ``scripts/release.sh`` runs it before it
tags. What is checked:

- ``genreshift/__init__.py`` declares a version X.Y.Z;
- CHANGELOG.md has an empty ``[Unreleased]`` section, then ``## [X.Y.Z] - YYYY-MM-DD`` with
  entries, and every earlier release below it in descending order;
- every row of the bundled registry names its model version and the genreshift release it
  shipped with (not later than X.Y.Z), and its bundled file exists with the registry's size
  and sha256; the bundled files stay within the size budget;
- ``genreshift --version`` prints X.Y.Z and every model;
- (unless ``--skip-git``) the work tree is clean and the tag vX.Y.Z is free or already on HEAD.

It reads files and runs ``genreshift --version``; it changes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

BUNDLE_LIMIT_MB = 25.0  # what a pip install of genreshift may weigh in weights (issue 22)
RELEASE_HEADING = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", re.M)


def version_of(repo: Path) -> str:
    match = re.search(r'^__version__ = "([^"]+)"', (repo / "genreshift" / "__init__.py").read_text(), re.M)
    return match.group(1) if match else ""


def as_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in version.split("."))


def changelog_problems(text: str, version: str) -> list[str]:
    problems = []
    unreleased = re.search(r"^## \[Unreleased\]\n(.*?)(?=^## \[)", text, re.M | re.S)
    if unreleased is None:
        return ["CHANGELOG.md: no [Unreleased] section above the releases"]
    if re.search(r"^- ", unreleased.group(1), re.M):
        problems.append("CHANGELOG.md: [Unreleased] still has entries; move them under the release")
    releases = RELEASE_HEADING.findall(text)
    if not releases or releases[0][0] != version:
        first = releases[0][0] if releases else "none"
        problems.append(f"CHANGELOG.md: the newest release section is {first}, not {version}")
    if [as_tuple(v) for v, _ in releases] != sorted((as_tuple(v) for v, _ in releases), reverse=True):
        problems.append("CHANGELOG.md: release sections are not in descending order")
    body = re.search(rf"^## \[{re.escape(version)}\].*?\n(.*?)(?=^## \[|\Z)", text, re.M | re.S)
    if body is None or not re.search(r"^- ", body.group(1), re.M):
        problems.append(f"CHANGELOG.md: the {version} section has no entries")
    return problems


def registry_problems(weights: Path, version: str) -> list[str]:
    problems, total = [], 0
    rows = json.loads((weights / "registry.json").read_text())["files"]
    for row in rows:
        name = row.get("file", "?")
        if not row.get("version") or not row.get("package_version"):
            problems.append(f"registry.json: {name} does not record its model version and package version")
        elif as_tuple(row["package_version"]) > as_tuple(version):
            problems.append(f"registry.json: {name} says it ships with {row['package_version']}, after {version}")
        path = weights / name
        if not path.is_file():
            problems.append(f"registry.json: {name} is not bundled in {weights}")
            continue
        data = path.read_bytes()
        total += len(data)
        if len(data) != row.get("size") or hashlib.sha256(data).hexdigest() != row.get("sha256"):
            problems.append(f"registry.json: {name} does not match its size or sha256")
    if total > BUNDLE_LIMIT_MB * 1e6:
        problems.append(f"bundled weights weigh {total / 1e6:.1f} MB, over {BUNDLE_LIMIT_MB:.0f} MB")
    return problems


def version_command_problems(repo: Path, version: str, models: list[str]) -> list[str]:
    env_python = [sys.executable, "-m", "genreshift", "--version"]
    done = subprocess.run(env_python, cwd=repo, capture_output=True, text=True)
    lines = done.stdout.splitlines()
    problems = [] if lines[:1] == [f"genreshift {version}"] else [f"`genreshift --version` printed {lines[:1]}"]
    listed = {line.split()[0] for line in lines[1:] if line.startswith("  ")}
    problems += [f"`genreshift --version` does not list {m}" for m in models if m not in listed]
    return problems


def git_problems(repo: Path, version: str) -> list[str]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True).stdout.strip()

    problems = []
    if git("status", "--porcelain", "--untracked-files=no"):
        problems.append("git: the work tree has uncommitted changes")
    tagged = git("rev-parse", "-q", "--verify", f"refs/tags/v{version}^{{commit}}")
    if tagged and tagged != git("rev-parse", "HEAD"):
        problems.append(f"git: tag v{version} exists and is not HEAD")
    return problems


def check(repo: Path, skip_git: bool = False) -> list[str]:
    version = version_of(repo)
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        return [f"genreshift/__init__.py: version {version!r} is not X.Y.Z"]
    weights = repo / "genreshift" / "weights"
    models = [row["model"] for row in json.loads((weights / "registry.json").read_text())["files"]]
    problems = changelog_problems((repo / "CHANGELOG.md").read_text(), version)
    problems += registry_problems(weights, version)
    problems += version_command_problems(repo, version, models)
    if not skip_git:
        problems += git_problems(repo, version)
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--skip-git", action="store_true", help="do not check the work tree and the tag")
    args = ap.parse_args()
    problems = check(args.repo, args.skip_git)
    for line in problems:
        print(f"release: {line}")
    if not problems:
        print(f"release: {version_of(args.repo)} is ready (CHANGELOG, registry, bundled files, --version)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
