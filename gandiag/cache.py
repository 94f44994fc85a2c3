"""On-disk cache of real-data features.

Real data is the same from one evaluation to the next, so its features are
extracted once and kept, keyed by the data's content hash, the extractor and
its weights' sha256 (different weights never reuse features). Files are
written atomically into the user cache directory, never into site-packages;
``--no-cache`` skips the cache, ``GANDIAG_CACHE_DIR`` moves it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

from .features import FeatureSet

CACHE_VERSION = 1


def cache_dir() -> Path:
    env = os.environ.get("GANDIAG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gandiag"))


def feature_key(content_hash: str, extractor_name: str, weights_sha256: Optional[str]) -> str:
    text = f"v{CACHE_VERSION}|{content_hash}|{extractor_name}|{weights_sha256}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def path_for(key: str) -> Path:
    return cache_dir() / "features" / f"{key}.npz"


def load(key: str) -> Optional[FeatureSet]:
    p = path_for(key)
    if not p.is_file():
        return None
    try:
        return FeatureSet.load(p)
    except Exception:  # a damaged cache entry is recomputed, never trusted
        return None


def store(key: str, features: FeatureSet) -> None:
    features.save(path_for(key))
