"""Benchmarks: Human3.6M as the papers evaluate it (``h36m``), mocli's mocap benchmark (``mocap``), and the shared
pieces (``runner``: windows over whole sequences, each frame scored once; ``report``: tables and JSON).

Each benchmark separates reading data, running the model and scoring: ``score_h36m(test_set, predict)`` and
``score_mocap(sequences, predict, options, variants)`` take a ``predict`` function, so the scoring can be checked
with known answers and any model (or none) can be plugged in.
"""

from mocli.evaluation.h36m import H36MTestSet, H36MVideo, load_test_set, score_h36m
from mocli.evaluation.mocap import MocapOptions, load_mocap_sequences, score_mocap
from mocli.evaluation.report import Metric, Report, ScoreSums, Table, build_table, render_report, write_report
from mocli.evaluation.runner import RunOptions, model_clip_len, predict_sequence, predict_windows

__all__ = [
    "H36MTestSet",
    "H36MVideo",
    "load_test_set",
    "score_h36m",
    "MocapOptions",
    "load_mocap_sequences",
    "score_mocap",
    "Metric",
    "Report",
    "ScoreSums",
    "Table",
    "build_table",
    "render_report",
    "write_report",
    "RunOptions",
    "model_clip_len",
    "predict_sequence",
    "predict_windows",
]
