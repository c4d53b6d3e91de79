"""data.repeat: a small data file weighs more in every epoch (mocli.training.runs.repeat_sources)."""

import numpy as np
import pytest

from mocli.config import DataConfig, RunConfig
from mocli.data.clips import LiftClipDataset
from mocli.data.sources import MotionSource
from mocli.errors import MocliError
from mocli.training.runs import build_datasets, check_common, repeat_sources


def _source(name: str, origin: str, frames: int = 40, split: str = "train") -> MotionSource:
    joints = np.random.default_rng(len(name)).normal(size=(frames, 17, 3)).astype(np.float32)
    return MotionSource(name=name, fps=30.0, joints3d=joints, split=split, origin=origin)


SOURCES = [
    _source("a1", "big.h5"),
    _source("a2", "big.h5"),
    _source("b1", "small.h5"),
    _source("v", "big.h5", split="val"),
]


def test_each_file_repeated_by_its_count():
    out = repeat_sources(SOURCES[:3], ["/x/big.h5", "/y/small.h5"], (1, 3))
    assert [s.name for s in out] == ["a1", "a2", "b1", "b1", "b1"]
    assert repeat_sources(SOURCES[:3], ["/x/big.h5", "/y/small.h5"], ()) == SOURCES[:3]


@pytest.mark.parametrize("repeat", [(1,), (1, 0), (2, 2, 2)])
def test_counts_that_do_not_fit_the_files_are_one_line_errors(repeat):
    with pytest.raises(MocliError, match="data.repeat"):
        repeat_sources(SOURCES[:3], ["big.h5", "small.h5"], repeat)


def test_a_wrong_count_is_reported_before_any_data_is_read():
    cfg = RunConfig(data=DataConfig(paths=["missing-a.h5", "missing-b.h5"], repeat=(1, 2, 3)))
    with pytest.raises(MocliError, match=r"data.repeat needs one count >= 1 per data file \(2\)"):
        check_common(cfg, 1)
    check_common(RunConfig(data=DataConfig(paths=["missing-a.h5", "missing-b.h5"], repeat=(1, 2))), 1)


def test_repeated_training_clips_get_their_own_augmentation_and_validation_is_untouched():
    cfg = DataConfig(paths=["big.h5", "small.h5"], clip_len=20, stride=20, repeat=(1, 3))

    def make(sources, train, stride):
        return LiftClipDataset(sources, cfg, seed=0, train=train, stride=stride)

    train_set, val_set = build_datasets(cfg, SOURCES, make)
    once, _ = build_datasets(DataConfig(paths=cfg.paths, clip_len=20, stride=20), SOURCES, make)
    assert len(train_set) == len(once) + 2 * 2  # small.h5's one sequence has 2 clips, listed twice more
    assert len(val_set) == 2
    b_clips = [i for i in range(len(train_set)) if train_set.sources[int(train_set.index.source[i])].name == "b1"]
    inputs = [train_set[(0, i)]["input"].numpy() for i in b_clips if int(train_set.index.start[i]) == 0]
    assert len(inputs) == 3 and not np.array_equal(inputs[0], inputs[1])
