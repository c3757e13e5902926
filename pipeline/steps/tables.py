"""Reading tabular data in either of the formats fetch accepts (CSV or Parquet)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

_PARQUET_MAGIC = b"PAR1"


def read_table(path: str | Path) -> pd.DataFrame:
    """Read CSV or Parquet, telling them apart by content: artifact paths carry no extension."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head == _PARQUET_MAGIC:
        return pd.read_parquet(path)
    return pd.read_csv(path)
