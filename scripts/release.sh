#!/usr/bin/env bash
# Cut a release of the version genreshift/__init__.py declares:
#   scripts/release.sh          check only (CHANGELOG section, registry versions and hashes,
#                               bundled files, `genreshift --version`, clean tree, free tag)
#   scripts/release.sh --tag    then tag HEAD as vX.Y.Z (annotated; push it yourself)
# Run `.ci/run` first: this script checks the release's bookkeeping, not the code.
# To reproduce the released weights themselves, see scripts/reproduce_weights.sh.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
"$python" "$repo/scripts/check_release.py" --repo "$repo"
if [ "${1:-}" = "--tag" ]; then
  version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$repo/genreshift/__init__.py")
  if git -C "$repo" rev-parse -q --verify "refs/tags/v$version" >/dev/null; then
    echo "release: tag v$version is already on HEAD"
  else
    git -C "$repo" tag -a "v$version" -m "genreshift $version"
    echo "release: tagged v$version"
  fi
fi
