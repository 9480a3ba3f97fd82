"""Released weights as data: where they come from, where they are cached, how they are checked.

A file is looked up in this order: the cache (hash-checked), the copy bundled inside the
package (hash-checked), then a download with pooch from the base URL (hash-checked; a
corrupt cached file is fetched again). Nothing here runs at import time.

Environment:
    GENRESHIFT_WEIGHTS_URL  base URL of the weights (http://, https:// or file://)
    GENRESHIFT_CACHE        cache folder (default: pooch.os_cache("genreshift"), the platform's user cache)
    GENRESHIFT_OFFLINE=1    never touch the network
    GENRESHIFT_REGISTRY     use this registry JSON instead of the bundled one
    GENRESHIFT_HOME         user data folder; finetuned models live in its models/ folder
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import urllib.parse
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from .atomic import replacing
from .errors import WeightsError, short_reason

DEFAULT_BASE_URL = "https://github.com/genreshift/genreshift-weights/releases/download/v1/"


@dataclass(frozen=True)
class Entry:
    model: str  # what users type: "rock", "fast"
    file: str  # file name in the cache and on the server
    kind: str  # "translator" | "vocoder"
    sha256: str
    size: int
    genre: str | None = None
    vocoder: str | None = None  # the vocoder model a translator was released with
    description: str = ""
    version: str = ""  # the model's own version ("v3"); users see it in `--version`
    package_version: str = ""  # the genreshift release this file first shipped with ("0.2.0")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def offline() -> bool:
    return _env_flag("GENRESHIFT_OFFLINE")


def base_url() -> str:
    url = os.environ.get("GENRESHIFT_WEIGHTS_URL") or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def cache_dir() -> Path:
    env = os.environ.get("GENRESHIFT_CACHE")
    if env:
        return Path(env).expanduser()
    # pooch.os_cache's folder, from platformdirs as pooch finds it: importing pooch (and
    # requests) takes longer than a whole model load, and only a download needs it.
    import platformdirs

    return Path(platformdirs.user_cache_dir("genreshift"))


def home_dir() -> Path:
    """User data folder (GENRESHIFT_HOME, else the platform's data dir)."""
    env = os.environ.get("GENRESHIFT_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Application Support"
    else:
        root = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return root / "genreshift"


def user_models_dir() -> Path:
    return home_dir() / "models"


def bundled_dir() -> Path:
    return Path(str(resources.files("genreshift") / "weights"))


def registry_entries() -> list[Entry]:
    path = os.environ.get("GENRESHIFT_REGISTRY")
    try:
        text = Path(path).read_text() if path else (bundled_dir() / "registry.json").read_text()
        data = json.loads(text)
        known = {f.name for f in fields(Entry)}  # a newer registry's extra keys are not an error
        return [Entry(**{k: v for k, v in item.items() if k in known}) for item in data["files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"{path or 'bundled registry.json'}: unreadable model registry ({exc})") from None


def find_entry(model: str) -> Entry | None:
    return next((e for e in registry_entries() if e.model == model), None)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_good(path: Path, entry: Entry) -> bool:
    return path.is_file() and path.stat().st_size == entry.size and sha256(path) == entry.sha256


def cached_path(entry: Entry) -> Path:
    return cache_dir() / entry.file


def status(entry: Entry) -> str:
    """'cached', 'bundled', 'corrupt' (a cached copy fails its hash) or 'remote'."""
    if cached_path(entry).exists():
        return "cached" if _is_good(cached_path(entry), entry) else "corrupt"
    if _is_good(bundled_dir() / entry.file, entry):
        return "bundled"
    return "remote"


def fetch(entry: Entry, progress: bool = True) -> Path:
    """A verified local path to ``entry``'s file, downloading it if needed.

    A corrupt cached copy (what ``models verify`` flags) is repaired, not passed over: from
    the bundled copy where there is one (no network needed), else by downloading again.
    """
    cached = cached_path(entry)
    if _is_good(cached, entry):
        return cached
    bundled = bundled_dir() / entry.file
    if _is_good(bundled, entry):
        if os.path.lexists(cached):
            _restore(bundled, entry, cached)
            return cached
        return bundled
    if offline():
        raise WeightsError(
            f"{entry.file}: weights for '{entry.model}' are not in the cache ({cache_dir()}) and "
            "GENRESHIFT_OFFLINE=1; run `genreshift models pull "
            f"{entry.model}` with network access, or copy the file there"
        )
    url = base_url() + entry.file
    try:
        _download(url, entry, cached, progress)
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(
            f"{entry.file}: could not download from {url} ({short_reason(exc)}); check the network, "
            "set GENRESHIFT_WEIGHTS_URL to a mirror, or set GENRESHIFT_OFFLINE=1 to use local files only"
        ) from None
    if not _is_good(cached, entry):
        cached.unlink(missing_ok=True)
        raise WeightsError(_corrupt_message(entry, url))
    return cached


def _restore(bundled: Path, entry: Entry, cached: Path) -> None:
    try:
        _copy_local(bundled, entry, cached)
    except OSError as exc:
        raise WeightsError(f"{cached}: the cached copy is corrupt and cannot be replaced ({exc.strerror or exc}); "
                           "delete it with `genreshift models rm " + entry.model + "`") from None  # fmt: skip


def _corrupt_message(entry: Entry, url: str) -> str:
    return (
        f"{entry.file}: the download from {url} is truncated or corrupt (sha256 or size does not "
        "match the registry); try again, or set GENRESHIFT_WEIGHTS_URL to a working mirror"
    )


def _download(url: str, entry: Entry, target: Path, progress: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("file://"):
        _copy_local(Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)), entry, target)
        return
    import pooch

    # pooch's own INFO lines go to the stderr of import time; the progress bar says enough.
    pooch.get_logger().setLevel("WARNING")
    fetcher = pooch.create(
        path=target.parent,
        base_url=url[: -len(entry.file)],
        registry={entry.file: f"sha256:{entry.sha256}"},
        retry_if_failed=2,
    )
    try:
        fetcher.fetch(entry.file, progressbar=progress)
    except ValueError as exc:
        if "hash" in str(exc).lower():
            raise WeightsError(_corrupt_message(entry, url)) from None
        raise


def _copy_local(source: Path, entry: Entry, target: Path) -> None:
    """A file:// mirror: copy into the cache under a temp name, check, then rename."""
    with replacing(target) as tmp:
        shutil.copyfile(source, tmp)
        if not _is_good(tmp, entry):
            raise WeightsError(_corrupt_message(entry, source.as_uri()))


def remove(entry: Entry) -> bool:
    """Delete the cached copy; the bundled copy, if any, stays."""
    path = cached_path(entry)
    if path.exists():
        path.unlink()
        return True
    return False


@dataclass(frozen=True)
class LocalModel:
    name: str
    path: Path


def local_models() -> list[LocalModel]:
    """Finetuned translators saved in the user model folder, found by file name."""
    folder = user_models_dir()
    if not folder.is_dir():
        return []
    return [LocalModel(p.stem, p) for p in sorted(folder.glob("*.pt")) if not p.name.startswith(".")]


def builtin_genres() -> list[str]:
    return [e.genre for e in registry_entries() if e.kind == "translator" and e.genre]
