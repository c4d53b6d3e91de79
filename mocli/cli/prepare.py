"""``mocli prepare``: video -> 2D keypoints, keypoint imports, dataset converters -> HDF5."""

from __future__ import annotations

import typer

from mocli.cli import prepare_dataset, prepare_video

app = typer.Typer(
    help="Turn videos, other tools' keypoints and datasets into mocli inputs (keypoint npz, HDF5).",
    no_args_is_help=True,
)
prepare_video.register(app)
prepare_dataset.register(app)
