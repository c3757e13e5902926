"""A deterministic, learnable stand-in for the team's song data (numpy only, no download).

Each country has its own taste (centre and spread of a few audio features); the label is drawn
from a softmax over how well a song matches each taste, so a model can do clearly better than
chance but not perfectly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.steps.schema import FEATURES, LABEL

COUNTRIES: tuple[str, ...] = ("BR", "DE", "JP", "US")
# Per-country taste on (danceability, energy, acousticness, speechiness, valence, tempo/200).
_TASTE = np.array(
    [
        [0.78, 0.75, 0.20, 0.10, 0.70, 0.62],  # BR
        [0.62, 0.82, 0.10, 0.06, 0.45, 0.66],  # DE
        [0.52, 0.60, 0.45, 0.05, 0.55, 0.58],  # JP
        [0.70, 0.62, 0.22, 0.22, 0.48, 0.55],  # US
    ]
)
_SHARPNESS = 60.0


def generate(rows: int = 2000, seed: int = 42) -> pd.DataFrame:
    """Return `rows` songs with the 13 features and a string `country` label."""
    rng = np.random.default_rng(seed)
    danceability = rng.beta(5, 3, rows)
    energy = rng.beta(5, 3, rows)
    acousticness = rng.beta(1.5, 5, rows)
    speechiness = rng.beta(1.2, 12, rows)
    valence = rng.beta(3, 3, rows)
    tempo = rng.normal(118, 22, rows).clip(60, 200)
    taste = np.stack(
        [danceability, energy, acousticness, speechiness, valence, tempo / 200], axis=1
    )
    distance = ((taste[:, None, :] - _TASTE[None, :, :]) ** 2).sum(axis=2)
    logits = -_SHARPNESS * distance
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(len(COUNTRIES), p=p) for p in probs])
    frame = pd.DataFrame(
        {
            "is_explicit": rng.random(rows) < 0.15 + 0.4 * speechiness,
            "duration_ms": rng.normal(205_000, 35_000, rows).clip(60_000, 600_000).round(),
            "danceability": danceability.round(4),
            "energy": energy.round(4),
            "key": rng.integers(0, 12, rows),
            "loudness": (-12 + 8 * energy + rng.normal(0, 1.5, rows)).round(3),
            "mode": rng.integers(0, 2, rows),
            "speechiness": speechiness.round(4),
            "acousticness": acousticness.round(4),
            "instrumentalness": rng.beta(0.5, 8, rows).round(5),
            "liveness": rng.beta(2, 10, rows).round(4),
            "valence": valence.round(4),
            "tempo": tempo.round(3),
        }
    )
    frame[LABEL] = np.array(COUNTRIES)[labels]
    return frame[[*FEATURES, LABEL]]


def write(path: Path, rows: int = 2000, seed: int = 42) -> Path:
    """Write the demo data as Parquet when `path` ends in .parquet, else as CSV."""
    frame = generate(rows, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path
