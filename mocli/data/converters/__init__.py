"""Dataset converters: one module per KIND, each turning a dataset's own files into mocli's HDF5 format.

A converter module has ``SUFFIXES``, ``SPLIT_RULES``, ``DEFAULT_SPLIT_RULE`` and two functions:
``plan(srcs, opts, stack) -> list[Task]`` (find the input files) and ``convert(task, opts) -> Iterator[Sequence]``
(read one file). ``convert_dataset`` drives them: one file at a time, bad files skipped and reported, output written
atomically through ``mocli.data.h5``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

from mocli.data.converters import amass, amc, bvh, h36m, instavariety, mesh, ntu, posetrack
from mocli.data.converters.common import ConvertOptions, Task, split_mod10
from mocli.data.h5 import DatasetWriter, Sequence
from mocli.errors import InputError

__all__ = ["KINDS", "ConvertOptions", "ConvertReport", "Failure", "Task", "convert_dataset"]

log = logging.getLogger(__name__)

KINDS: dict[str, ModuleType] = {
    "bvh": bvh,
    "amc": amc,
    "h36m": h36m,
    "amass": amass,
    "ntu": ntu,
    "mesh": mesh,
    "posetrack": posetrack,
    "instavariety": instavariety,
}


@dataclass(frozen=True)
class Failure:
    """An input file that could not be converted, and why (one line)."""

    path: str
    error: str


@dataclass
class ConvertReport:
    """What a conversion wrote.

    Attributes:
        out: the HDF5 file; kind: the converter; sources: source names.
        sequences, frames: per split; failures: skipped files; seconds: wall time.
    """

    out: Path
    kind: str
    sources: list[str]
    sequences: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)
    frames_by_source: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0


def _dedup(name: str, writer: DatasetWriter) -> str:
    if name not in writer:
        return name
    k = 2
    while f"{name}~{k}" in writer:
        k += 1
    log.warning("sequence name %s is taken; writing %s~%d", name, name, k)
    return f"{name}~{k}"


def _convert_task(conv: ModuleType, task: Task, opts: ConvertOptions, writer: DatasetWriter) -> list[Sequence]:
    """Write every sequence of one task; on error remove what it wrote and re-raise."""
    written: list[Sequence] = []
    try:
        for seq in conv.convert(task, opts):
            if opts.split_rule == "train":
                seq.split = "train"
            seq = replace(seq, name=_dedup(seq.name, writer))
            writer.add(seq)
            written.append(seq)
    except BaseException:
        for seq in written:
            writer.remove(seq.name)
        raise
    return written


def _count(writer: DatasetWriter, report: ConvertReport) -> None:
    """Fill the report's sequence and frame counts from what the writer holds."""
    for name in writer.names:
        attrs = writer.attrs(name)
        report.sequences[attrs["split"]] += 1
        report.frames[attrs["split"]] += int(attrs["num_frames"])
        report.frames_by_source[attrs["source"]] += int(attrs["num_frames"])


def convert_dataset(
    kind: str,
    srcs: list[Path],
    out: Path,
    opts: ConvertOptions | None = None,
    progress: Callable[[list[Task]], Iterable[Task]] | None = None,
    overwrite: bool = False,
) -> ConvertReport:
    """Convert ``srcs`` (files, folders or tar archives) of dataset ``kind`` into one HDF5 file ``out``.

    Files that fail are skipped and listed in ``report.failures``. ``progress`` wraps the task list (the CLI passes
    a rich progress bar). The output appears only if the conversion completes with at least one sequence.

    An existing ``out`` is replaced only with ``overwrite`` (and then only once the new file is complete).

    Raises:
        InputError: ``out`` exists (without ``overwrite``), unknown kind or split rule, no input files, or no
            sequence converted at all.
    """
    if Path(out).exists() and not overwrite:
        raise InputError(f"{out} exists; give --overwrite to replace it")
    if kind not in KINDS:
        raise InputError(f"unknown dataset kind {kind!r}; known: {', '.join(KINDS)}")
    conv = KINDS[kind]
    opts = replace(opts or ConvertOptions())
    opts.split_rule = opts.split_rule or conv.DEFAULT_SPLIT_RULE
    if opts.split_rule not in conv.SPLIT_RULES:
        raise InputError(f"{kind}: split rule {opts.split_rule!r} is not one of {', '.join(conv.SPLIT_RULES)}")
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        tasks = conv.plan(list(srcs), opts, stack)
        if not tasks:
            names = ", ".join(str(s) for s in srcs)
            raise InputError(f"no {kind} input ({'/'.join(conv.SUFFIXES)}) found in {names}")
        sources = sorted({t.source for t in tasks})
        report = ConvertReport(out=Path(out), kind=kind, sources=sources)
        with DatasetWriter(out, kind=kind, source=",".join(sources)) as writer:
            unsplit: dict[str, list[str]] = {}
            for task in progress(tasks) if progress else tasks:
                try:
                    written = _convert_task(conv, task, opts, writer)
                except Exception as e:  # a bad file is reported and skipped, whatever broke
                    msg = str(e) if isinstance(e, InputError) else f"{type(e).__name__}: {e}"
                    log.debug("failed: %s", task.relpath, exc_info=True)
                    report.failures.append(Failure(task.relpath, msg.splitlines()[0] if msg else type(e).__name__))
                    continue
                if opts.split_rule == "mod10" and task.split is None:
                    unsplit.setdefault(task.source, []).extend(s.name for s in written)
            for names in unsplit.values():  # multi-sequence files: mod10 over the sorted sequence names
                for name, split in zip(sorted(names), split_mod10(len(names)), strict=True):
                    writer.update(name, split=split)
            _count(writer, report)
            if not writer.names:
                first = f": {report.failures[0].path}: {report.failures[0].error}" if report.failures else ""
                raise InputError(f"no sequence converted from {len(tasks)} {kind} file(s){first}")
    report.seconds = time.perf_counter() - start
    return report
