from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def synthetic() -> dict:
    """Anchors for two values and texts with known latent intensities."""
    rng = np.random.default_rng(7)
    rows = []
    for value in ("schwartz:benevolence", "mft:care_harm"):
        for i, x in enumerate(rng.uniform(-10, 10, 120)):
            rows.append({"text": f"{value} anchor {i}", "value": value, "intensity": float(x)})
    anchors = pd.DataFrame(rows)
    texts = [f"response number {i}" for i in range(24)]
    latent = rng.uniform(-8, 8, len(texts))
    truth = dict(zip(anchors["text"], anchors["intensity"], strict=True))
    truth.update(dict(zip(texts, latent, strict=True)))
    return {"anchors": anchors, "texts": texts, "latent": latent, "truth": truth}
