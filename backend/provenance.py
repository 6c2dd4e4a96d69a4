"""Where a result came from: the code's commit, a file's hash, a package's version.

Read by both training commands (their JSON sidecars), ``evaluate`` (its settings file) and the
registry (the weights hash in every latent cache key).
"""

from __future__ import annotations

import hashlib
import subprocess
from importlib import metadata
from pathlib import Path


def git_commit() -> str:
    """The repository's HEAD commit, with ``+dirty`` if tracked files changed, or ``unknown``."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def package_version(pkg: str) -> str:
    """The installed version of distribution ``pkg``, or ``unknown``."""
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"
