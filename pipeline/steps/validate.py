"""Check the data the way a data scientist would before anyone trains on it.

Every problem found is collected (not just the first), written to the report, and raised as one
DataValidationError whose message names each problem, so the run stops before publish.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.steps.errors import DataValidationError
from pipeline.steps.schema import FEATURES, LABEL, LEAKAGE_COLUMNS

# Value ranges of the audio features (Spotify's documented ranges).
RANGES: dict[str, tuple[float, float]] = {
    "duration_ms": (1, 3_600_000),
    "danceability": (0, 1),
    "energy": (0, 1),
    "key": (-1, 11),
    "mode": (0, 1),
    "speechiness": (0, 1),
    "acousticness": (0, 1),
    "instrumentalness": (0, 1),
    "liveness": (0, 1),
    "valence": (0, 1),
    "tempo": (0, 300),
}
_BOOL_TEXT = {"true", "false", "0", "1"}


@dataclass(frozen=True)
class Thresholds:
    min_rows: int = 50
    max_missing_fraction: float = 0.05
    min_classes: int = 2
    min_rows_per_class: int = 5


@dataclass
class ValidationReport:
    rows: int
    columns: list[str]
    problems: list[str] = field(default_factory=list)
    class_counts: dict[str, int] = field(default_factory=dict)
    missing_fraction: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def write(self, path: Path) -> None:
        path.write_text(json.dumps({**asdict(self), "ok": self.ok}, indent=2, sort_keys=True))


def missing_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in (*FEATURES, LABEL) if c not in frame.columns]


def validate(frame: pd.DataFrame, thresholds: Thresholds = Thresholds()) -> ValidationReport:
    """Return the report of all checks; `report.problems` is empty when the data is fit."""
    report = ValidationReport(rows=len(frame), columns=[str(c) for c in frame.columns])
    present = set(report.columns)
    missing = missing_columns(frame)
    if missing:
        report.problems.append(f"missing column(s): {', '.join(missing)}")
    leaks = sorted(LEAKAGE_COLUMNS & present)
    if leaks:
        report.problems.append(f"label leakage: column(s) {', '.join(leaks)} must not be present")
    if len(frame) < thresholds.min_rows:
        report.problems.append(f"only {len(frame)} rows, need at least {thresholds.min_rows}")
    for column in (c for c in (*FEATURES, LABEL) if c in present):
        _check_column(frame[column], thresholds, report)
    if LABEL in present:
        _check_classes(frame[LABEL], thresholds, report)
    return report


def _check_column(series: pd.Series, thresholds: Thresholds, report: ValidationReport) -> None:
    name = str(series.name)
    fraction = float(series.isna().mean()) if len(series) else 0.0
    report.missing_fraction[name] = round(fraction, 4)
    if fraction > thresholds.max_missing_fraction:
        report.problems.append(
            f"column {name!r} is {fraction:.0%} missing "
            f"(at most {thresholds.max_missing_fraction:.0%} allowed)"
        )
    if name == LABEL:
        return
    values = series.dropna()
    if name == "is_explicit":
        if not _is_boolean(values):
            report.problems.append(f"column {name!r} must be boolean (true/false or 0/1)")
        return
    numeric = pd.to_numeric(values, errors="coerce")
    bad = values[numeric.isna()]
    if len(bad):
        report.problems.append(f"column {name!r} is not numeric (e.g. {bad.iloc[0]!r})")
        return
    low, high = RANGES.get(name, (float("-inf"), float("inf")))
    outside = int(((numeric < low) | (numeric > high)).sum())
    if outside:
        report.problems.append(f"column {name!r} has {outside} value(s) outside [{low}, {high}]")


def _is_boolean(values: pd.Series) -> bool:
    # A CSV column of 0/1 with a gap reads as float (0.0/1.0); text reads as "True"/"false".
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return bool(values.isin([0, 1]).all())
    return bool(values.astype(str).str.lower().isin(_BOOL_TEXT).all())


def _check_classes(labels: pd.Series, thresholds: Thresholds, report: ValidationReport) -> None:
    counts = labels.dropna().astype(str).value_counts()
    report.class_counts = {str(k): int(v) for k, v in sorted(counts.items())}
    if len(counts) < thresholds.min_classes:
        report.problems.append(
            f"label {LABEL!r} has {len(counts)} class(es), need at least {thresholds.min_classes}"
        )
    rare = [
        f"{k} ({v})" for k, v in report.class_counts.items() if v < thresholds.min_rows_per_class
    ]
    if rare:
        report.problems.append(
            f"label class(es) with fewer than {thresholds.min_rows_per_class} rows: "
            + ", ".join(rare)
        )


def validate_file(data: Path, report_path: Path, thresholds: Thresholds = Thresholds()) -> None:
    """Validate the data file, write the report, and raise when the data is not fit."""
    from pipeline.steps.tables import read_table

    report = validate(read_table(data), thresholds)
    report.write(report_path)
    if not report.ok:
        raise DataValidationError("data validation failed: " + "; ".join(report.problems))
