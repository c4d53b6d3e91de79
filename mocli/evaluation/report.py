"""Benchmark reports: per-group error sums, tables (rich for the terminal, plain dicts for JSON).

Generic over benchmarks: a table groups frames by any key (Human3.6M action, mocap source, NTU class, ...) and
holds any set of metrics. Sums are kept per group and metric as (total, count), so a group's value is the mean
over its frames (or over whatever unit the metric counts, e.g. acceleration terms), and the footer gives both the
mean over groups (each group weighs the same: Human3.6M's "paper number") and the mean over all frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mocli._version import __version__
from mocli.results import write_json

__all__ = ["Metric", "ScoreSums", "Row", "Table", "Report", "build_table", "write_report", "render_report"]

MEAN_OVER_GROUPS = "mean over {key}s"
MEAN_OVER_FRAMES = "mean over frames"


@dataclass(frozen=True)
class Metric:
    """A column: ``key`` in JSON (e.g. 'mpjpe'), ``label`` in the terminal table, ``unit`` (e.g. 'mm')."""

    key: str
    label: str
    unit: str = "mm"


class ScoreSums:
    """Running sums of errors per group and metric, and frame counts per group."""

    def __init__(self) -> None:
        self._sums: dict[str, dict[str, list[float]]] = {}
        self.frames: dict[str, int] = {}

    def add(self, group: str, metric: str, values: np.ndarray) -> None:
        """Add per-item errors (N,) of one group (N frames, or N terms for metrics not counted in frames)."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        self.add_total(group, metric, float(values.sum()), int(values.size))

    def add_total(self, group: str, metric: str, total: float, count: int) -> None:
        """Add a sum of ``count`` errors to a group."""
        entry = self._sums.setdefault(group, {}).setdefault(metric, [0.0, 0])
        entry[0] += total
        entry[1] += count

    def add_frames(self, group: str, count: int) -> None:
        self.frames[group] = self.frames.get(group, 0) + int(count)

    @property
    def groups(self) -> list[str]:
        return list(self._sums.keys() | self.frames.keys())

    def mean(self, group: str, metric: str) -> float | None:
        """Mean error of a group (None when the group has no value of that metric)."""
        total, count = self._sums.get(group, {}).get(metric, (0.0, 0))
        return total / count if count else None

    def pooled_mean(self, metric: str) -> float | None:
        """Mean over every item of every group (the per-frame mean)."""
        total = sum(g.get(metric, (0.0, 0))[0] for g in self._sums.values())
        count = sum(g.get(metric, (0.0, 0))[1] for g in self._sums.values())
        return total / count if count else None


@dataclass
class Row:
    """One line of a table: a group (or a summary), its frame count and one value per metric key."""

    name: str
    frames: int
    values: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "frames": self.frames, **self.values}


@dataclass
class Table:
    """Errors per group with summary rows. ``key`` names the grouping ('action', 'source', ...)."""

    title: str
    key: str
    metrics: list[Metric]
    rows: list[Row]
    summary: list[Row]

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "group_by": self.key,
            "metrics": {m.key: {"label": m.label, "unit": m.unit} for m in self.metrics},
            "rows": [r.to_dict() for r in self.rows],
            "summary": {r.name: r.to_dict() for r in self.summary},
        }

    def summary_row(self, name: str) -> Row:
        return next(r for r in self.summary if r.name == name)


def build_table(
    sums: ScoreSums,
    title: str,
    key: str,
    metrics: list[Metric],
    order: Iterable[str] = (),
    mean_over_groups: bool = True,
) -> Table:
    """A Table of the groups in ``sums``: those in ``order`` first (in that order), the rest sorted.

    Summary rows: "mean over <key>s" (unweighted mean of the group means; only if ``mean_over_groups``) and
    "mean over frames" (every item weighs the same).
    """
    order = [g for g in order if g in sums.groups]
    names = order + sorted(set(sums.groups) - set(order))
    rows = [Row(g, sums.frames.get(g, 0), {m.key: sums.mean(g, m.key) for m in metrics}) for g in names]
    total = sum(r.frames for r in rows)
    summary = []
    if mean_over_groups:
        means = {m.key: _mean([r.values[m.key] for r in rows]) for m in metrics}
        summary.append(Row(MEAN_OVER_GROUPS.format(key=key), total, means))
    summary.append(Row(MEAN_OVER_FRAMES, total, {m.key: sums.pooled_mean(m.key) for m in metrics}))
    return Table(title=title, key=key, metrics=metrics, rows=rows, summary=summary)


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


@dataclass
class Report:
    """A benchmark's result: headline figures, tables and the run's facts (model, data, options, exclusions)."""

    benchmark: str
    headline: dict[str, float | None]
    tables: list[Table]
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "mocli_version": __version__,
            "headline": self.headline,
            "info": self.info,
            "tables": [t.to_dict() for t in self.tables],
        }


def write_report(report: Report, path: str | Path) -> Path:
    """Write the report as JSON (atomically)."""
    return write_json(report.to_dict(), path)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_report(report: Report, console: Any) -> None:
    """Print every table of a report with rich, then the headline figures."""
    from rich.table import Table as RichTable

    for table in report.tables:
        out = RichTable(title=table.title, title_justify="left")
        out.add_column(table.key)
        out.add_column("frames", justify="right")
        for m in table.metrics:
            out.add_column(f"{m.label} ({m.unit})", justify="right")
        for i, row in enumerate(table.rows):
            last = i == len(table.rows) - 1
            out.add_row(row.name, str(row.frames), *[_fmt(row.values[m.key]) for m in table.metrics], end_section=last)
        for row in table.summary:
            out.add_row(row.name, str(row.frames), *[_fmt(row.values[m.key]) for m in table.metrics], style="bold")
        console.print(out)
    for key, value in report.headline.items():
        console.print(f"{key}: [bold]{_fmt(value)}[/]", highlight=False)
