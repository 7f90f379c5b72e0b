"""The shipped artefacts: cached seed embeddings and the fitted default local scorer.

``data/seed_base_emb.npz`` holds the bundled MiniLM's embeddings of the seed VIDB texts and
their middle-layer features (float16; see ``_scorer_encoder``) with a hash of the texts, so loading the default scorer encodes nothing but the value
definitions. ``data/local_scorer.json`` holds the fitted scorer (coefficients, intervals, CV
metrics). When the seed VIDB changes, the hash no longer matches and the scorer refits.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from valueflow.embed._model import HiVESModel, load_hives
from valueflow.embed._scorer import LocalScorer

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["load_local_scorer", "scorer_cache_dir", "scorer_training_frame", "texts_hash",
           "write_shipped_scorer"]

#: Bump when a change to LocalScorer makes fits cached on disk stale.
SCORER_VERSION = "3"
CACHE_DIR_ENV = "VALUEFLOW_CACHE_DIR"
_SEED_SOURCE = "valueflow-seed"

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


def scorer_cache_dir() -> Path:
    """Where fitted local scorers are cached: ``$VALUEFLOW_CACHE_DIR`` or
    ``$XDG_CACHE_HOME/valueflow`` (``~/.cache/valueflow``)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "valueflow"


def _quantile_sample(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` rows evenly spaced over ``frame`` sorted by intensity (keeps the distribution;
    deterministic)."""
    if len(frame) <= n:
        return frame
    ordered = frame.sort_values(["intensity", "text"], kind="stable")
    return ordered.iloc[np.unique(np.linspace(0, len(frame) - 1, n).round().astype(int))]


def scorer_training_frame(vidb: pd.DataFrame, *, add_seed: bool = True,
                          values: list[str] | None = None, max_texts: int = 10_000,
                          off_value_texts: int = 150) -> pd.DataFrame:
    """The texts a local scorer refit on ``vidb`` learns from.

    ``vidb``'s texts for every value it has; with ``add_seed``, the seed VIDB's texts for
    the values it lacks, so those values stay scorable and every value sees off-value texts.
    A large VIDB is sampled (evenly over each value's intensities) to about ``max_texts``:
    the ``values`` to be scored share the budget (at least 500 texts each), the others keep
    ``off_value_texts`` each as negatives; without ``values`` all values share it.
    """
    import pandas as pd

    from valueflow.tables import require_columns
    from valueflow.vidb import load_seed

    require_columns(vidb, ["text", "value", "intensity"], source="the VIDB")
    cols = ["text", "value", "intensity", "source"]
    frame = vidb.assign(source=vidb["source"] if "source" in vidb.columns else "VIDB table")
    frame = frame[cols].dropna(subset=["text", "value", "intensity"])
    frame = frame[frame["text"].astype(str).str.strip() != ""]
    frame = frame.drop_duplicates(subset=["value", "text"], keep="first")
    if add_seed:
        seed = load_seed()
        seed = seed.assign(source=seed["source"].fillna(_SEED_SOURCE))[cols]
        extra = seed[~seed["value"].isin(set(frame["value"]))]
        frame = pd.concat([frame, extra], ignore_index=True)
    if len(frame) > max_texts:
        from valueflow.theories import resolve_value

        focus = {resolve_value(v).id for v in values} if values else set(frame["value"])
        n_off = frame["value"].nunique() - len(focus & set(frame["value"]))
        per = max(500, (max_texts - off_value_texts * n_off) // max(1, len(focus)))
        parts = [_quantile_sample(g, per if v in focus else off_value_texts)
                 for v, g in frame.groupby("value", sort=True)]
        frame = pd.concat(parts, ignore_index=True)
    return frame.reset_index(drop=True)


def _fit_key(enc: HiVESModel, frame: pd.DataFrame) -> str:
    h = hashlib.sha256(f"{SCORER_VERSION}\0{enc.name}\0{enc.base}\0".encode())
    for t, v, y in zip(frame["text"].astype(str), frame["value"].astype(str),
                       frame["intensity"].astype(float), strict=True):
        h.update(f"{v}\x1f{y!r}\x1f{t}\0".encode())
    return h.hexdigest()[:24]


def _is_seed(frame: pd.DataFrame) -> bool:
    from valueflow.vidb import load_seed

    if "source" in frame.columns and not set(frame["source"].dropna().astype(str)) <= {
            _SEED_SOURCE}:
        return False
    seed = load_seed()
    return len(frame) == len(seed) and set(zip(frame["value"], frame["text"], strict=True)) == set(
        zip(seed["value"], seed["text"], strict=True))


_FITTED: dict[tuple[str, str, int], LocalScorer] = {}


def _fitted(key: str, folder: str | None, enc: HiVESModel, frame: pd.DataFrame) -> LocalScorer:
    memo = (key, str(folder), id(enc))
    if memo not in _FITTED:
        while len(_FITTED) >= 4:
            _FITTED.pop(next(iter(_FITTED)))
        _FITTED[memo] = _fit_or_load(key, folder, enc, frame)
    return _FITTED[memo]


def _fit_or_load(key: str, folder: str | None, enc: HiVESModel, frame: pd.DataFrame
                 ) -> LocalScorer:
    texts = frame["text"].astype(str).tolist()
    scorer = LocalScorer(model=enc)
    seed_rows = _seed_cache(enc, _seed_texts())
    if seed_rows is not None:
        scorer._cache.update(seed_rows)
    where = Path(folder) / f"local-scorer-{key}" if folder else None
    if where is not None and (where / "state.json").is_file():
        try:
            state = json.loads((where / "state.json").read_text(encoding="utf-8"))
            with np.load(where / "emb.npz") as z:
                rows = np.asarray(z["rows"])
            if len(rows) == len(texts):
                scorer._cache.update(zip(texts, rows, strict=True))
                return scorer.load_state(state, frame)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged cache entry (a cut-short emb.npz is a bad zip): refit, overwrite
    if sys.stderr.isatty():
        print(f"fitting the local scorer on {len(frame)} VIDB texts (cached for next time)...",
              file=sys.stderr, flush=True)
    scorer.fit(frame)
    if where is not None:
        try:
            where.mkdir(parents=True, exist_ok=True)
            e, mid = scorer._encode(texts)
            tmp = where / f"emb.{os.getpid()}.npz"
            np.savez_compressed(tmp, rows=np.hstack([e, mid]).astype(np.float16))
            os.replace(tmp, where / "emb.npz")
            tmp_state = where / f"state.{os.getpid()}.json"
            tmp_state.write_text(json.dumps(scorer.state_dict()), encoding="utf-8")
            os.replace(tmp_state, where / "state.json")  # written last: marks the entry done
        except OSError:
            pass  # an unwritable cache only costs the refit next time
    return scorer


@lru_cache(maxsize=1)
def _seed_texts() -> list[str]:
    from valueflow.vidb import load_seed

    return load_seed()["text"].astype(str).tolist()


def load_local_scorer(path: str | Path | None = None, *, vidb: pd.DataFrame | str | None = None,
                      model: HiVESModel | str | None = None, add_seed: bool = True,
                      values: list[str] | None = None, max_texts: int = 10_000,
                      cache_dir: str | Path | None = None) -> LocalScorer:
    """The local intensity scorer (a ``DirectScorer``).

    Args:
        path: Unused unless given: a folder with ``local_scorer.json`` written by
            :func:`write_shipped_scorer` (it must be fitted on the seed VIDB).
        vidb: Refit on this VIDB (a frame, ``"workspace"``, ``"seed"`` or a file or folder
            path) instead of loading the shipped fit. Fits are cached on disk by content
            (see :func:`scorer_cache_dir`): the first fit on a VIDB encodes its texts
            (~300 texts/s on 2 CPU cores), later loads take about a second.
        model: Encoder for the features (default: the bundled MiniLM; ``"default"`` for the
            shipped HiVES head, or a model folder).
        add_seed: With ``vidb``: also learn the seed VIDB's texts of the values ``vidb``
            lacks (see :func:`scorer_training_frame`).
        values, max_texts: With a ``vidb`` larger than ``max_texts``: the values that will
            be scored, which keep most of the sample (see :func:`scorer_training_frame`).
        cache_dir: Folder of the fit cache (default :func:`scorer_cache_dir`).

    Returns:
        A fitted scorer; its ``description`` says what it was trained on.
    """
    if vidb is None and model is None and path is None:
        return _default_scorer()
    enc = load_hives(model if model is not None else SCORER_MODEL) if not isinstance(
        model, HiVESModel) else model
    if vidb is None and path is not None:
        from valueflow.vidb import load_seed

        seed = load_seed()
        state = json.loads((Path(path) / "local_scorer.json").read_text(encoding="utf-8"))
        return LocalScorer(model=enc).load_state(state, seed)
    if isinstance(vidb, str) or vidb is None:
        from valueflow.vidb import load_vidb

        vidb = load_vidb(vidb or "seed")
    frame = scorer_training_frame(vidb, add_seed=add_seed, values=values, max_texts=max_texts)
    if model is None and _is_seed(frame):
        return _default_scorer()
    key = _fit_key(enc, frame)
    folder = Path(cache_dir) if cache_dir is not None else scorer_cache_dir()
    return _fitted(key, str(folder), enc, frame)


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
