"""``mocli eval`` benchmarks of the task heads: ``ntu`` and ``ntu120-oneshot`` (NTU RGB+D actions) and ``mesh``
(3DPW and Human3.6M meshes). ``mocli.cli.eval`` holds the 3D pose benchmarks and adds these commands to its app."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from mocli.cli.eval import BatchOption, ClipLenOption, JsonOption, clip_len_of, finish, load_lifter_info
from mocli.cli.options import get_settings
from mocli.errors import MocliError


def add_commands(app: typer.Typer) -> None:
    """Add ``ntu``, ``ntu120-oneshot`` and ``mesh`` to the ``eval`` app."""
    app.command("ntu", help=NTU_HELP)(ntu)
    app.command("ntu120-oneshot", help=ONESHOT_HELP)(ntu120_oneshot)
    app.command("mesh", help=MESH_HELP)(mesh)


# ----------------------------------------------------------------------------------------------------------------------
# NTU RGB+D actions (mocli.evaluation.ntu)
# ----------------------------------------------------------------------------------------------------------------------


class NtuSplit(str, Enum):
    xsub = "xsub"
    xview = "xview"
    xset = "xset"


NTU_HELP = """NTU RGB+D actions: top-1 and top-5 accuracy (%) on the val set of a split, per class and overall.

--data: PYSKL's [b]ntu60_hrnet.pkl[/b] (splits xsub, xview) or [b]ntu120_hrnet.pkl[/b] (xsub, xset), or a folder of
NTU's raw [b].skeleton[/b] files (a missing-skeleton .txt inside is applied; docs/ntu.md). --model: a
checkpoint with an action head (`mocli finetune action`, or imported MotionBERT NTU weights). Every sample of
<split>_val is scored exactly once, deterministically: the 2 most confident persons (zero-padded), resampled to the
model's clip length with one frame from the middle of each equal time bin, normalised in one box (side = the middle
of the training box-scale range, 2 for MotionBERT's recipe) - the sample the finetuning validation builds.

[b]Examples[/b]

  mocli eval ntu --data ntu60_hrnet.pkl --split xsub --model mb-ntu60
  mocli --device cuda eval ntu --data ntu60_hrnet.pkl --split xview --model xv
"""

ONESHOT_HELP = """NTU-120 one-shot actions: accuracy (%) of the nearest exemplar (cosine) over the 20 novel classes.

--data: PYSKL's [b]ntu120_hrnet.pkl[/b], or a folder of raw [b].skeleton[/b] files. --model: a checkpoint with an
action-oneshot head (`mocli finetune action-oneshot`). Novel classes A001, A007, ..., A115 (0-based labels 0, 6,
..., 114); every sample of a novel class takes part, whatever its split. The exemplar of a class is the one named
by --exemplar, else its [b]first sample by frame_dir[/b] (string order; mocli's rule, the same as `mocli finetune
action-oneshot`: the protocol's own exemplar list is not shipped with mocli); every other novel-class sample is a
query, scored once.

[b]Examples[/b]

  mocli eval ntu120-oneshot --data ntu120_hrnet.pkl --model runs/finetune/x
  mocli eval ntu120-oneshot --model m --data d --exemplar S001C003P008R001A001
"""


def _action_setup(ctx: typer.Context, model: str, task: str):
    """The settings, device (seeded) and action model of an NTU benchmark, and the report info they give."""
    from mocli.actions import load_action_model
    from mocli.utils.device import resolve_device
    from mocli.utils.seed import seed_everything

    settings = get_settings(ctx)
    device = resolve_device(settings.device)
    seed_everything(settings.seed)
    action = load_action_model(model, device, task=task)
    info = {"model": action.info, "clip_len": action.clip_len, "max_persons": action.max_persons,
            "box_ratio": action.box_ratio, "device": str(device)}  # fmt: skip
    return settings, device, action, info


def _score_with_progress(settings, name: str, total: int, score) -> Any:
    """``score(on_batch)`` under a progress bar of ``total`` samples."""
    from mocli.cli.batch import progress_bar

    with progress_bar(settings.quiet) as progress:
        task = progress.add_task(name, total=total)
        return score(lambda n: progress.advance(task, n))


def ntu(
    ctx: typer.Context,
    data: Annotated[
        Path, typer.Option("--data", help="PYSKL pkl (ntu60_hrnet.pkl, ntu120_hrnet.pkl) or a .skeleton folder.")
    ],
    model: Annotated[str, typer.Option(help="Checkpoint with an action head, or a weights name.")],
    split: Annotated[NtuSplit, typer.Option(help="Benchmark whose <split>_val list is scored.")] = NtuSplit.xsub,
    json_path: JsonOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per forward pass.")] = 16,
) -> None:
    from mocli.evaluation.ntu import load_pyskl, model_predict, score_ntu, val_samples

    settings, device, action, info = _action_setup(ctx, model, "action")
    pkl = load_pyskl(data)
    samples = val_samples(pkl, split.value, data.name)
    top = max((s.label for s in samples), default=-1)
    if top >= action.num_classes:
        raise MocliError(f"the model's action head has {action.num_classes} classes; {data.name} has label {top}")
    info = {"data": str(data), "split": f"{split.value}_val", **info,
            "resampling": "one frame per equal time bin, the bin's middle"}  # fmt: skip
    predict = model_predict(action, batch_size, device)
    report = _score_with_progress(
        settings, "ntu", len(samples),
        lambda on_batch: score_ntu(samples, predict, batch_size=batch_size, info=info, on_batch=on_batch),
    )  # fmt: skip
    finish(report, json_path, settings.quiet)


def ntu120_oneshot(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option("--data", help="PYSKL's ntu120_hrnet.pkl or a .skeleton folder.")],
    model: Annotated[str, typer.Option(help="Checkpoint with an action-oneshot head, or a weights name.")],
    exemplar: Annotated[
        list[str] | None, typer.Option(help="frame_dir of a novel class's exemplar (repeat; default: first by name).")
    ] = None,
    json_path: JsonOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Samples per forward pass.")] = 16,
) -> None:
    from mocli.evaluation.ntu import NOVEL_CLASSES, all_samples, load_pyskl, model_predict, oneshot_sets, score_oneshot

    settings, device, action, info = _action_setup(ctx, model, "action-oneshot")
    samples = all_samples(load_pyskl(data), data.name, labels=NOVEL_CLASSES)
    exemplars, queries = oneshot_sets(samples, NOVEL_CLASSES, exemplar or ())
    info = {"data": str(data), **info,
            "exemplar_rule": "--exemplar names, else the first sample of each novel class by frame_dir"}  # fmt: skip
    predict = model_predict(action, batch_size, device)
    report = _score_with_progress(
        settings, "ntu120-oneshot", len(queries),
        lambda on_batch: score_oneshot(exemplars, queries, predict, batch_size=batch_size, info=info,
                                       on_batch=on_batch),
    )  # fmt: skip
    finish(report, json_path, settings.quiet)


# ----------------------------------------------------------------------------------------------------------------------
# Mesh recovery: 3DPW and Human3.6M (mocli.evaluation.mesh)
# ----------------------------------------------------------------------------------------------------------------------


class MeshDataset(str, Enum):
    pw3d = "3dpw"
    h36m = "h36m"


MESH_HELP = """Mesh recovery: MPVE, MPJPE and PA-MPJPE (mm) of SMPL meshes, as MotionBERT reports them.

--data: MotionBERT's mesh pkl ([b]mesh_det_pw3d.pkl[/b], [b]mesh_det_h36m.pkl[/b]; its 'test' split). --model: a
checkpoint with a mesh head (`mocli finetune mesh`, or imported MotionBERT mesh weights). --smpl-dir (or
MOCLI_SMPL_DIR): SMPL_NEUTRAL.pkl/.npz, smpl_mean_params.npz and J_regressor_h36m.npy. Ground truth = SMPL with the
pkl's pose and shape; meshes and joints aligned at their pelvis; MPJPE and PA-MPJPE on 14 joints (17 minus pelvis,
spine, nose); every frame scored exactly once (windows of the model's clip length); mean over frames.

[b]Examples[/b]

  mocli eval mesh --data mesh_det_pw3d.pkl --model pw3d.pt --smpl-dir ~/smpl
  mocli eval mesh --dataset h36m --data mesh_det_h36m.pkl --model mb-mesh.pt
"""


def mesh(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option("--data", help="MotionBERT mesh pkl (mesh_det_pw3d.pkl, mesh_det_h36m.pkl).")],
    model: Annotated[str, typer.Option(help="Checkpoint with a mesh head, or a weights name.")],
    dataset: Annotated[MeshDataset, typer.Option(help="Which benchmark the file holds.")] = MeshDataset.pw3d,
    smpl_dir: Annotated[Path | None, typer.Option(help="Folder of the SMPL files (else $MOCLI_SMPL_DIR).")] = None,
    layout: Annotated[str, typer.Option(help="Joint order of joint_2d: h36m or coco.")] = "h36m",
    json_path: JsonOption = None,
    clip_len: ClipLenOption = None,
    batch_size: BatchOption = 8,
) -> None:
    from mocli.cli.batch import progress_bar
    from mocli.evaluation.mesh import head_predictor, load_mesh_test_set, score_mesh
    from mocli.evaluation.runner import RunOptions
    from mocli.mesh.meshes import load_mesh_head
    from mocli.models.smpl import BodyModel, find_smpl_files
    from mocli.models.stmo import ManyToOne
    from mocli.utils.device import resolve_device
    from mocli.utils.seed import seed_everything

    settings = get_settings(ctx)
    files = find_smpl_files(smpl_dir.expanduser() if smpl_dir else None)  # missing files fail before the model loads
    sequences = load_mesh_test_set(data, layout=layout)
    device = resolve_device(settings.device)
    seed_everything(settings.seed)
    encoder, model_info = load_lifter_info(model, device)
    if isinstance(encoder, ManyToOne):
        raise MocliError(f"{model} is an STMO (many-to-one) lifter; eval mesh needs a DSTformer with a mesh head")
    head = load_mesh_head(model_info["path"], encoder)
    if head is None:
        raise MocliError(f"{model} has no mesh head: finetune one with `mocli finetune mesh` (docs/finetune.md)")
    head = head.to(device)
    body = BodyModel.from_files(files).to(device)
    data_cfg = ((getattr(encoder, "checkpoint_info", {}) or {}).get("train_config") or {}).get("data") or {}
    lo, hi = data_cfg.get("scale_range") or (1.0, 1.0)
    opts = RunOptions(clip_len=clip_len_of(encoder, clip_len), flip=False, batch_size=batch_size, device=str(device))
    info = {"model": model_info, "data": str(data), "layout": layout, "clip_len": opts.clip_len, "device": str(device),
            "box_ratio": (float(lo) + float(hi)) / 2, "smpl_model": files.model.name}  # fmt: skip
    with progress_bar(settings.quiet) as progress:
        task = progress.add_task(f"mesh {dataset.value}", total=sum(s.num_frames for s in sequences))
        report = score_mesh(
            sequences, head_predictor(encoder, head, opts, info["box_ratio"]), body, dataset.value, info=info,
            on_sequence=lambda seq: progress.advance(task, seq.num_frames),
        )  # fmt: skip
    finish(report, json_path, settings.quiet)
