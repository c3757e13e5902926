"""The data contract shared by every step: feature columns in model order and the label."""

from __future__ import annotations

FEATURES: tuple[str, ...] = (
    "is_explicit",
    "duration_ms",
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
)
LABEL = "country"
# Columns that carry the answer (or an id that would let a model memorise it) must never reach
# training; validation rejects a dataset that has them.
LEAKAGE_COLUMNS: frozenset[str] = frozenset(
    {"rank", "position", "chart_country", "country_code", "region", "market", "label"}
)
ONNX_INPUT = "features"
ONNX_OUTPUT = "probabilities"
