"""The shipped artefacts: cached seed embeddings and the fitted default local scorer.

``data/seed_base_emb.npz`` holds the bundled MiniLM's embeddings of the seed VIDB texts and
their middle-layer features (float16; see ``_scorer_encoder``) with a hash of the texts, so loading the default scorer encodes nothing but the value
definitions. ``data/local_scorer.json`` holds the fitted scorer (coefficients, intervals, CV
metrics). When the seed VIDB changes, the hash no longer matches and the scorer refits.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from valueflow.embed._model import HiVESModel, load_hives
from valueflow.embed._scorer import LocalScorer

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_local_scorer", "texts_hash", "write_shipped_scorer"]

#: The encoder the default scorer uses. On texts the HiVES head never saw, scorer features
#: from the base MiniLM predicted intensity better than features from the head, so the
#: default scorer uses the base encoder (see the embed README section of the report).
SCORER_MODEL = "base"


def _data_dir() -> Path:
    return Path(str(resources.files("valueflow.embed") / "data"))


def texts_hash(texts: list[str]) -> str:
    """A short hash of an ordered list of texts."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()[:16]


def _seed_cache(model: HiVESModel, texts: list[str]) -> dict[str, Any] | None:
    """Scorer cache rows (``[e, mid]``, float16) of the seed texts, if they match ``texts``."""
    path = _data_dir() / "seed_base_emb.npz"
    if model.head is not None or model.base != load_hives("base").base or not path.is_file():
        return None
    with np.load(path) as z:
        if str(z["hash"]) != texts_hash(texts) or "mid" not in z.files:
            return None
        rows = np.hstack([z["emb"], z["mid"]]).astype(np.float16)
    return dict(zip(texts, rows, strict=True))


@lru_cache(maxsize=2)
def _default_scorer() -> LocalScorer:
    from valueflow.vidb import load_seed

    seed = load_seed()
    texts = seed["text"].astype(str).tolist()
    scorer = LocalScorer(model=load_hives(SCORER_MODEL))
    cached = _seed_cache(scorer._model(), texts)
    state_path = _data_dir() / "local_scorer.json"
    if cached is not None:
        scorer._cache.update(cached)
        if state_path.is_file():
            state = json.loads(state_path.read_text(encoding="utf-8"))
            if state.get("seed_hash") == texts_hash(texts):
                return scorer.load_state(state, seed)
    return scorer.fit(seed)


def load_local_scorer(path: str | Path | None = None, *, vidb: pd.DataFrame | str | None = None,
                      model: HiVESModel | str | None = None) -> LocalScorer:
    """The local intensity scorer (a ``DirectScorer``).

    Args:
        path: Unused unless given: a folder with ``local_scorer.json`` written by
            :func:`write_shipped_scorer` (it must be fitted on the seed VIDB).
        vidb: Refit on this VIDB (a frame, ``"workspace"``, ``"seed"`` or a file path)
            instead of loading the shipped fit; takes seconds.
        model: Encoder for the features (default: the bundled MiniLM; ``"default"`` for the
            shipped HiVES head, or a model folder).

    Returns:
        A fitted scorer; its ``description`` says what it was trained on.
    """
    if vidb is None and model is None and path is None:
        return _default_scorer()
    enc = load_hives(model if model is not None else SCORER_MODEL) if not isinstance(
        model, HiVESModel) else model
    scorer = LocalScorer(model=enc)
    if vidb is None and path is not None:
        from valueflow.vidb import load_seed

        seed = load_seed()
        state = json.loads((Path(path) / "local_scorer.json").read_text(encoding="utf-8"))
        return scorer.load_state(state, seed)
    if isinstance(vidb, str) or vidb is None:
        from valueflow.vidb import load_vidb

        frame = load_vidb(vidb or "seed")
    else:
        frame = vidb
    cached = _seed_cache(enc, frame["text"].astype(str).tolist())
    if cached is not None:
        scorer._cache.update(cached)
    return scorer.fit(frame)


def write_shipped_scorer(out: str | Path | None = None) -> LocalScorer:
    """Encode the seed VIDB, fit the default scorer and write both artefacts (developers)."""
    from valueflow.vidb import load_seed

    folder = Path(out) if out is not None else _data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    seed = load_seed()
    texts = seed["text"].astype(str).tolist()
    scorer = LocalScorer(model=load_hives(SCORER_MODEL))
    emb, mid = scorer._encode(texts)  # the scorer's cache holds float16 rows: what loading sees
    np.savez_compressed(folder / "seed_base_emb.npz", emb=emb.astype(np.float16),
                        mid=mid.astype(np.float16), hash=np.array(texts_hash(texts)))
    scorer.fit(seed)
    state = dict(scorer.state_dict(), seed_hash=texts_hash(texts))
    (folder / "local_scorer.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
    _default_scorer.cache_clear()
    return scorer
