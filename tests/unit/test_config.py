"""Config: --set conversion by field type, unknown-key suggestions, sections that do not apply, presets, round
trip."""

from __future__ import annotations

import pytest

from mocli.config import (
    FinetuneConfig,
    RunConfig,
    TrainConfig,
    apply_dict,
    apply_overrides,
    config_from_dict,
    config_keys,
    config_to_dict,
    finetune_config,
    finetune_config_from_dict,
    list_presets,
    load_preset,
)
from mocli.errors import MocliError


def test_set_converts_by_field_type():
    cfg = apply_overrides(
        RunConfig(),
        [
            "train.lr=2e-4", "data.clip_len=81", "data.noise=false", "data.distance_m=2, 6.5",
            "data.paths=a.h5,b.h5", "model=dstformer-tiny", "train.epochs=1e2", "data.image_size=640,480",
        ],
    )  # fmt: skip
    assert cfg.train.lr == 2e-4 and isinstance(cfg.train.lr, float)
    assert cfg.data.clip_len == 81 and isinstance(cfg.data.clip_len, int)
    assert cfg.data.noise is False
    assert cfg.data.distance_m == (2.0, 6.5)
    assert cfg.data.paths == ["a.h5", "b.h5"]
    assert cfg.model == "dstformer-tiny"
    assert cfg.train.epochs == 100
    assert cfg.data.image_size == (640, 480)


@pytest.mark.parametrize(
    "item, words",
    [
        ("train.epochs=abc", ["train.epochs", "int"]),
        ("data.noise=maybe", ["true or false"]),
        ("data.distance_m=3", ["2 comma-separated"]),
        ("train.epochs=2.5", ["int"]),
        ("train.lr", ["section.key=value"]),
    ],
)
def test_bad_values_are_one_line_errors(item, words):
    with pytest.raises(MocliError) as err:
        apply_overrides(RunConfig(), [item])
    assert all(w in str(err.value) for w in words) and "\n" not in str(err.value)


def test_unknown_key_suggests_the_closest():
    with pytest.raises(MocliError, match=r"did you mean train\.lr"):
        apply_overrides(RunConfig(), ["train.lrr=1"])
    with pytest.raises(MocliError, match=r"did you mean data\.clip_len"):
        apply_overrides(RunConfig(), ["clip_len=81"])
    with pytest.raises(MocliError, match="sections: data, .*train"):
        apply_overrides(RunConfig(), ["zzz.qqq=1"])


def test_sections_of_the_other_kind_of_run_are_refused_by_name():
    with pytest.raises(MocliError) as err:
        apply_overrides(FinetuneConfig(), ["text.temperature=0.2"])  # a pretext's section in a finetune run
    message = str(err.value)
    assert message.startswith("config key 'text.temperature' does not apply to this run")
    assert "its sections: data, head, loss, mesh_loss, train" in message and "\n" not in message
    assert "did you mean head.temperature?" in message  # the finetune key of that name
    with pytest.raises(MocliError, match="'head.num_classes' does not apply.*sections: data, loss, mpm, mpm2d3d, text"):
        apply_overrides(RunConfig(), ["head.num_classes=3"])
    for cfg, key in ((FinetuneConfig(), "pretext"), (RunConfig(), "task")):
        with pytest.raises(MocliError, match=f"unknown config key '{key}'"):
            apply_overrides(cfg, [f"{key}=x"])
    assert not {"pretext", "mpm.frame_ratio", "text.temperature"} & set(config_keys(FinetuneConfig()))
    assert not {"task", "head.dropout", "mesh_loss.pose"} & set(config_keys(RunConfig()))
    shared = {k for k in config_keys(RunConfig()) if k.split(".")[0] in ("data", "train", "loss")}
    assert shared and shared <= set(config_keys(FinetuneConfig()))


def test_finetune_configs_round_trip_and_read_runs_saved_with_pretext_sections():
    cfg = apply_overrides(finetune_config("action"), ["head.num_classes=7", "train.save_minutes=2.5"])
    assert cfg.train.lr_head == 1e-3 and cfg.data.flip_prob == 0.0  # the task's preset
    saved = config_to_dict(cfg)
    assert finetune_config_from_dict(saved) == cfg
    old = {**saved, "pretext": "", "text": {"temperature": 0.3}, "mpm": {}, "mpm2d3d": {}}  # written before the split
    assert finetune_config_from_dict(old) == cfg
    with pytest.raises(MocliError, match="unknown finetune task 'dance'; tasks: pose3d, action"):
        finetune_config("dance")


def test_last_pt_is_written_every_ten_minutes_by_default():
    assert TrainConfig().save_minutes == 10.0 and TrainConfig().save_every == 1000


def test_keys_and_round_trip():
    keys = config_keys(RunConfig())
    assert {"train.lr", "data.clip_len", "loss.velocity", "seed"} <= set(keys)
    cfg = apply_overrides(RunConfig(), ["train.betas=0.8,0.9", "data.fps=30"])
    again = config_from_dict(config_to_dict(cfg))
    assert again == cfg
    with pytest.raises(MocliError):
        config_from_dict({"train": {"nope": 1}})


def test_presets_load_and_apply():
    names = list_presets()
    assert {"pretrain_dstformer-lite_lift", "pretrain_dstformer_lift", "pretrain_dstformer-tiny_debug"} <= set(names)
    for name in names:
        apply_dict(RunConfig(), load_preset(name))
    cfg = apply_dict(RunConfig(), load_preset("pretrain_dstformer-tiny_debug"))
    assert cfg.model == "dstformer-tiny" and cfg.data.clip_len == 27
    with pytest.raises(MocliError, match="did you mean"):
        load_preset("pretrain_dstformer-tiny_debg")
