"""mocli.evaluation.ntu on fixtures in PYSKL's exact layout whose answers are known by construction: a stub model whose
scores are a known function of the input (top-1 / top-5 by hand), split selection, every sample exactly once, the
one-shot exemplar rule and the cosine nearest exemplar on hand-made embeddings, and one-line errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from mocli.errors import MocliError
from mocli.evaluation.ntu import (
    NOVEL_CLASSES,
    NtuSample,
    all_samples,
    class_name,
    load_pyskl,
    oneshot_sets,
    score_ntu,
    score_oneshot,
    val_samples,
)

C = 10  # classes of the stub model


def annotation(frame_dir: str, label: int, intended: int, persons: int = 1, frames: int = 12) -> dict:
    """A PYSKL annotation whose keypoint scores encode the class the stub model will rank first."""
    rng = np.random.default_rng(len(frame_dir) + label)
    return {
        "frame_dir": frame_dir,
        "total_frames": frames,
        "img_shape": (1080, 1920),
        "label": label,
        "keypoint": rng.uniform(100, 900, (persons, frames, 17, 2)).astype(np.float32),
        "keypoint_score": np.full((persons, frames, 17), (intended + 1) / 100, np.float32),
    }


def stub_predict(samples) -> np.ndarray:
    """Scores -|c - p| - 0.01 c, p decoded from the first person's confidence: the ranking is p, p-1, p+1, p-2,
    p+2, ... (clipped to 0..C-1)."""
    out = []
    for s in samples:
        p = int(round(float(s.keypoints[0, 0, 0, 2]) * 100)) - 1
        c = np.arange(C)
        out.append(-np.abs(c - p) - 0.01 * c)
    return np.array(out)


def write_pkl(path, annotations, split) -> str:
    with open(path, "wb") as f:
        pickle.dump({"split": split, "annotations": annotations}, f)
    return str(path)


@pytest.fixture
def ntu_pkl(tmp_path):
    anns = [
        annotation("S001C001P001R001A001", 0, intended=0),  # top-1 right
        annotation("S001C001P001R001A002", 1, intended=4, persons=2),  # 1 is 3 away from 4: top-5 = 4,3,5,2,6 -> miss
        annotation("S001C001P001R001A003", 2, intended=3),  # 2 is second after 3: top-5 hit, top-1 miss
        annotation("S001C002P001R001A003", 2, intended=2),  # top-1 right
        annotation("S001C001P002R001A004", 3, intended=7),  # train only: never scored
    ]
    split = {
        "xsub_train": ["S001C001P002R001A004"],
        "xsub_val": ["S001C001P001R001A001", "S001C001P001R001A002", "S001C001P001R001A003", "S001C001P001R001A001",
                     "S001C002P001R001A003"],  # a name listed twice counts once
        "xview_train": ["S001C001P001R001A001", "S001C001P001R001A002", "S001C001P001R001A003"],
        "xview_val": ["S001C002P001R001A003", "S001C001P002R001A004"],
    }  # fmt: skip
    return write_pkl(tmp_path / "ntu60_hrnet.pkl", anns, split)


def test_top1_top5_by_hand_and_each_sample_once(ntu_pkl):
    samples = val_samples(load_pyskl(ntu_pkl), "xsub")
    assert [s.name for s in samples] == [
        "S001C001P001R001A001", "S001C001P001R001A002", "S001C001P001R001A003", "S001C002P001R001A003"
    ]  # fmt: skip
    assert samples[1].keypoints.shape == (2, 12, 17, 3)  # COCO -> H36M, both persons
    seen = []
    report = score_ntu(samples, lambda b: (seen.extend(s.name for s in b), stub_predict(b))[1], batch_size=3)
    assert sorted(seen) == sorted(s.name for s in samples) and len(seen) == 4
    # by hand: top-1 right for A001 and the second A003 -> 2/4; top-5 right for all but A002 -> 3/4
    assert report.headline == {"top-1 (%)": 50.0, "top-5 (%)": 75.0}
    rows = {r.name: r for r in report.tables[0].rows}
    assert rows["A003"].frames == 2 and rows["A003"].values == {"top1": 50.0, "top5": 100.0}
    assert rows["A002"].values == {"top1": 0.0, "top5": 0.0}
    # mean over classes: top-1 (100 + 0 + 50) / 3
    assert report.tables[0].summary_row("mean over actions").values["top1"] == pytest.approx(50.0)
    assert report.info["samples"] == 4


def test_the_split_selects_its_val_list(ntu_pkl):
    samples = val_samples(load_pyskl(ntu_pkl), "xview")
    assert [s.label for s in samples] == [2, 3]
    report = score_ntu(samples, stub_predict)
    # A003 intended 2 (top-1 right); A004 intended 7, label 3 is 4 away: top-5 = 7,6,8,5,9 -> miss
    assert report.headline == {"top-1 (%)": 50.0, "top-5 (%)": 50.0}


@pytest.mark.parametrize(
    "content, message",
    [
        ([1, 2], "expected PYSKL's layout"),
        ({"annotations": []}, "'split' must map names"),
        ({"split": {"xsub_val": []}, "annotations": {}}, "expected PYSKL's layout"),
    ],
)
def test_a_wrong_layout_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(MocliError, match=message) as e:
        load_pyskl(path)
    assert "\n" not in str(e.value)


def test_unknown_split_missing_list_missing_annotation_and_bad_shape(tmp_path, ntu_pkl):
    data = load_pyskl(ntu_pkl)
    with pytest.raises(MocliError, match="unknown split 'xfoo'"):
        val_samples(data, "xfoo")
    with pytest.raises(MocliError, match="no 'xset_val' list in 'split' \\(have: xsub_train"):
        val_samples(data, "xset")
    bad = write_pkl(tmp_path / "b.pkl", [annotation("a", 0, 0)], {"xsub_val": ["a", "b"]})
    with pytest.raises(MocliError, match="1 frame_dir\\(s\\) of xsub_val have no annotation, e.g. b"):
        val_samples(load_pyskl(bad), "xsub")
    ann = annotation("a", 0, 0)
    ann["keypoint"] = ann["keypoint"][0]
    worse = write_pkl(tmp_path / "c.pkl", [ann], {"xsub_val": ["a"]})
    with pytest.raises(MocliError, match="'keypoint'\\] has shape \\(12, 17, 2\\), expected \\(M, T, 17, 2\\)"):
        val_samples(load_pyskl(worse), "xsub")
    with pytest.raises(MocliError, match="no such file"):
        load_pyskl(tmp_path / "missing.pkl")


def _oneshot_samples() -> list[NtuSample]:
    """Two samples of novel classes 0 and 6, three of 12, and auxiliary classes 1 and 7, named out of order."""
    kp = np.zeros((1, 4, 17, 3), np.float32)
    spec = [("S003A001", 0), ("S001A001", 0), ("S002A007", 6), ("S001A007", 6), ("S005A013", 12), ("S004A013", 12),
            ("S009A013", 12), ("S001A002", 1), ("S001A008", 7)]  # fmt: skip
    return [NtuSample(n, c, kp) for n, c in spec]


def test_oneshot_exemplars_are_the_first_by_frame_dir_unless_named():
    samples = _oneshot_samples()
    ex, queries = oneshot_sets(samples, (0, 6, 12))
    assert [s.name for s in ex] == ["S001A001", "S001A007", "S004A013"]
    assert sorted(s.name for s in queries) == ["S002A007", "S003A001", "S005A013", "S009A013"]
    ex, queries = oneshot_sets(samples, (0, 6, 12), ["S009A013"])
    assert [s.name for s in ex] == ["S001A001", "S001A007", "S009A013"] and len(queries) == 4
    with pytest.raises(MocliError, match="not sequences of the novel classes"):
        oneshot_sets(samples, (0, 6, 12), ["S001A002"])
    with pytest.raises(MocliError, match="no samples of novel class\\(es\\) A019"):
        oneshot_sets(samples, (0, 6, 12, 18))
    assert len(NOVEL_CLASSES) == 20 and NOVEL_CLASSES[-1] == 114 and class_name(114) == "A115"


def test_oneshot_accuracy_is_the_cosine_nearest_exemplar_on_hand_made_embeddings():
    samples = _oneshot_samples()
    ex, queries = oneshot_sets(samples, (0, 6, 12))
    # exemplars along x (class 0), y (6) and z (12); cosine ignores the length
    emb = {"S001A001": [1, 0, 0], "S001A007": [0, 1, 0], "S004A013": [0, 0, 1],
           "S003A001": [5, 1, 0],  # -> 0, right
           "S002A007": [0.9, 0.8, 0],  # -> 0, wrong (class 6)
           "S005A013": [0, 0.1, 3],  # -> 12, right
           "S009A013": [0.2, 0.6, 0.5]}  # -> 6, wrong  # fmt: skip
    seen = []

    def embed(batch):
        seen.extend(s.name for s in batch)
        return np.array([emb[s.name] for s in batch], float)

    report = score_oneshot(ex, queries, embed, batch_size=2)
    assert report.headline == {"one-shot top-1 (%)": 50.0}
    rows = {r.name: (r.frames, r.values["top1"]) for r in report.tables[0].rows}
    assert rows == {"A001": (1, 100.0), "A007": (1, 0.0), "A013": (2, 50.0)}
    assert sorted(seen) == sorted(s.name for s in ex + queries)  # each exemplar and query embedded once
    assert report.info["exemplars"] == ["S001A001", "S001A007", "S004A013"]


def test_all_samples_keeps_only_the_asked_labels(tmp_path):
    anns = [annotation("a", 0, 0), annotation("b", 1, 0), annotation("c", 6, 0)]
    path = write_pkl(tmp_path / "ntu120_hrnet.pkl", anns, {"xsub_train": [], "xsub_val": []})
    assert [s.name for s in all_samples(load_pyskl(path), labels=NOVEL_CLASSES)] == ["a", "c"]


# --- raw Kinect skeletons (mocli.data.ntu_skeleton) -----------------------------------------------------------


@pytest.fixture
def raw_folder(tmp_path):
    """A (two persons; xsub train, xview val, xset val), B (in a subfolder; xsub val, xview train, xset val),
    C (xsub val, xview train, xset train), D (malformed: 24 joints; xsub train, xview train, xset val), and E,
    named by the missing-skeleton list in the folder (truncated)."""
    from tests.unit.test_ntu_skeleton import edit, joint_values, one_frame, skeleton_lines, two_person_frames, write

    root = tmp_path / "skeletons"
    (root / "sub").mkdir(parents=True)
    write(root / "S001C001P001R001A050.skeleton", skeleton_lines(two_person_frames()))
    write(root / "sub" / "S001C002P003R001A002.skeleton", skeleton_lines([[(5, joint_values(0, t))] for t in range(3)]))
    write(root / "S002C003P006R002A003.skeleton", skeleton_lines([[(6, joint_values(1, t))] for t in range(2)]))
    write(root / "S001C002P008R001A004.skeleton", edit(one_frame(), 4, "24"))
    write(root / "S001C001P009R001A005.skeleton", ["3", "0"])
    (root / "NTU_RGBD_samples_with_missing_skeletons.txt").write_text("S001C001P009R001A005\n")
    return root


def test_raw_skeleton_folder_has_the_splits_of_the_names_and_reads_only_scored_files(raw_folder):
    from mocli.data.ntu_skeleton import read_skeleton_keypoints
    from tests.unit.test_ntu_skeleton import H36M_FROM_KINECT, joint_values

    data = load_pyskl(raw_folder)
    assert sorted(a["frame_dir"] for a in data["annotations"]) == [
        "S001C001P001R001A050", "S001C002P003R001A002", "S001C002P008R001A004", "S002C003P006R002A003"
    ]  # E left out by the list  # fmt: skip
    xsub = val_samples(data, "xsub", raw_folder.name)  # D is in xsub's train set: never parsed
    assert [(s.name, s.label) for s in xsub] == [("S002C003P006R002A003", 2), ("S001C002P003R001A002", 1)]
    b = xsub[1].keypoints
    assert b.shape == (1, 3, 17, 3) and b.dtype == np.float32
    np.testing.assert_array_equal(b[0, 2, :, :2], joint_values(0, 2)[H36M_FROM_KINECT, 5:7])
    assert (b[..., 2] == 1.0).all()
    np.testing.assert_array_equal(b, read_skeleton_keypoints(raw_folder / "sub" / "S001C002P003R001A002.skeleton"))
    (a,) = val_samples(data, "xview")
    assert a.name == "S001C001P001R001A050" and a.label == 49 and a.keypoints.shape == (2, 4, 17, 3)
    assert (a.keypoints[1, [0, 3]] == 0).all()  # the second person is absent there: zero padding
    with pytest.raises(MocliError, match="^S001C002P008R001A004.skeleton:4: frame 1 of 1, body 1 has 24 joints"):
        val_samples(data, "xset")
    assert [s.name for s in all_samples(data, labels=[1, 2])] == ["S002C003P006R002A003", "S001C002P003R001A002"]


def test_raw_skeleton_file_and_one_line_errors(raw_folder, tmp_path):
    data = load_pyskl(raw_folder / "sub" / "S001C002P003R001A002.skeleton")
    assert data["split"]["xsub_val"] == ["S001C002P003R001A002"] and data["split"]["xview_train"] == data["split"][
        "xsub_val"]  # fmt: skip
    (tmp_path / "empty").mkdir()
    with pytest.raises(MocliError, match="empty: no .skeleton files"):
        load_pyskl(tmp_path / "empty")
    (tmp_path / "skeletons.tar").write_bytes(b"")
    with pytest.raises(MocliError, match="skeletons.tar: an archive; extract it"):
        load_pyskl(tmp_path / "skeletons.tar")
    (raw_folder / "take2.skeleton").write_text("1\n0\n")
    with pytest.raises(MocliError, match="^take2: not an NTU sample name"):
        load_pyskl(raw_folder)
