"""A run's log and progress display: log.jsonl (the truth) with log.csv and curves.png as views of it, and the
``Reporter`` protocol the loop reports progress through (the command line supplies a rich progress bar)."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any, Protocol

from mocli.utils.io import atomic_path

__all__ = ["Reporter", "LogReporter", "SilentReporter", "RunLog", "plot_curves"]

log = logging.getLogger(__name__)


class Reporter(Protocol):
    def start(self, total_steps: int, done_steps: int) -> None: ...

    def update(self, step: int, info: dict[str, float] | None) -> None:
        """Called after every step; ``info`` (loss, lr, samples/s, epoch) on logging steps only."""
        ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


class LogReporter:
    """Progress through ``logging`` (the library default)."""

    def start(self, total_steps: int, done_steps: int) -> None:
        log.info("training: %d steps (%d done)", total_steps, done_steps)

    def update(self, step: int, info: dict[str, float] | None) -> None:
        if info:
            log.info("step %d  loss %.4f  %.1f samples/s", step, info["loss"], info["samples_per_s"])

    def message(self, text: str) -> None:
        log.info("%s", text)

    def close(self) -> None:
        return None


class SilentReporter:
    """The reporter of every process but the first."""

    def start(self, total_steps: int, done_steps: int) -> None: ...

    def update(self, step: int, info: dict[str, float] | None) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


class RunLog:
    """log.jsonl of a run folder, with CSV and plot views. Only the main process writes.

    Rows: {"kind": "train", "step", "epoch", "lr", "loss", terms..., "samples_per_s"} every ``train.log_every``
    steps and {"kind": "val", "step", "epoch", "train_loss", "val_<metric>"...} after each epoch.
    """

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.dir = run_dir
        self.path = run_dir / "log.jsonl"
        self.enabled = enabled
        self.lines = 0

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate(self, lines: int) -> None:
        """Keep the first ``lines`` rows (rows written after a checkpoint are dropped on resume)."""
        if self.enabled and self.path.is_file():
            kept = self.path.read_text().splitlines()[:lines]
            self.path.write_text("".join(f"{line}\n" for line in kept))
        self.lines = lines

    def append(self, row: dict[str, Any]) -> None:
        self.lines += 1
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")

    def write_views(self) -> None:
        """Rewrite log.csv and curves.png from log.jsonl."""
        if not self.enabled:
            return
        rows = self.rows()
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        with atomic_path(self.dir / "log.csv") as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        plot_curves(rows, self.dir / "curves.png")


def plot_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """curves.png: training loss (log scale), validation MPJPE (mm) and learning rate against the step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train = [r for r in rows if r.get("kind") == "train"]
    val = [r for r in rows if r.get("kind") == "val"]
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_val, ax_lr = fig.subplots(1, 3)
    if train:
        steps = [r["step"] for r in train]
        ax_loss.plot(steps, [r["loss"] for r in train], label="train loss")
        if val and "val_loss" in val[0]:
            ax_loss.plot([r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="val loss")
        if min(r["loss"] for r in train) > 0:
            ax_loss.set_yscale("log")
        ax_lr.plot(steps, [r["lr"] for r in train])
    metric = [(r["step"], r["val_mpjpe_mm"]) for r in val if "val_mpjpe_mm" in r]
    if metric:
        ax_val.plot(*zip(*metric, strict=True), "o-")
    ax_loss.set(xlabel="step", title="loss")
    if train:
        ax_loss.legend(loc="upper right")
    ax_val.set(xlabel="step", ylabel="mm", title="val MPJPE (root-relative)")
    ax_lr.set(xlabel="step", title="learning rate (backbone)")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
