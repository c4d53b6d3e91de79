"""mmpose top-down 2D pose models from the user's own config and checkpoint files.

Optional: mmpose 1.x (with mmcv 2.x and mmengine) is the user's install. No person detector is run: each frame is
one box covering the whole image (``inference_topdown`` without boxes), which suits one person filling much of the
frame. For several people, run mmpose's own demo with a detector and import its JSON with
``mocli prepare keypoints --format mmpose``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mocli.errors import InputError, MissingDependencyError
from mocli.keypoints.base import Detection

__all__ = ["MMPoseDetector"]

INSTALL_HINT = "pip install mmengine 'mmcv==2.1.0' 'mmpose==1.3.2' (mmcv builds from source; see mmpose's guide)"

# Keypoints of the model -> (skeleton, leading joints kept): COCO-WholeBody and Halpe-136 start with the body.
_LAYOUTS = {17: ("coco", 17), 26: ("halpe", 26), 133: ("coco", 17), 136: ("halpe", 26)}


def _import_mmpose() -> tuple[Any, Any]:
    try:
        from mmpose.apis import inference_topdown, init_model
    except ImportError as e:
        raise MissingDependencyError(f"the mmpose detector needs mmpose ({e}): {INSTALL_HINT}") from None
    return init_model, inference_topdown


def _device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu"
    return "cuda:0" if device == "cuda" else device


class MMPoseDetector:
    """``Detector`` backed by ``mmpose.apis.init_model`` + ``inference_topdown`` (whole-frame box).

    Args:
        config: the model's mmpose config file (.py).
        checkpoint: its weights (.pth), a local file.
        device: mocli device string (auto, cpu, cuda, cuda:N).
    """

    name = "mmpose"
    multi_person = False

    def __init__(self, config: str | Path | None, checkpoint: str | Path | None, device: str = "auto") -> None:
        if config is None or checkpoint is None:
            raise InputError("the mmpose detector needs --mmpose-config CONFIG.py and --mmpose-checkpoint WEIGHTS.pth")
        for path in (Path(config), Path(checkpoint)):
            if not path.is_file():
                raise InputError(f"{path}: no such file")
        init_model, self._inference = _import_mmpose()
        self._model = init_model(str(config), str(checkpoint), device=_device(device))
        num = int(self._model.dataset_meta.get("num_keypoints", 0))
        if num not in _LAYOUTS:
            raise InputError(f"{config}: model predicts {num} keypoints; mocli reads 17 (COCO), 26, 133 or 136")
        self.skeleton, self._keep = _LAYOUTS[num]

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """(H, W, 3) uint8 BGR frame (mmpose's default channel order) -> one Detection per predicted instance."""
        detections = []
        for sample in self._inference(self._model, frame_bgr):
            inst = sample.pred_instances
            keypoints = np.asarray(inst.keypoints)  # (N, K, 2) pixels
            scores = np.asarray(inst.keypoint_scores)  # (N, K)
            boxes = np.asarray(inst.bboxes) if "bboxes" in inst else None  # (N, 4) xyxy
            box_scores = np.asarray(inst.bbox_scores) if "bbox_scores" in inst else None
            for n in range(keypoints.shape[0]):
                kp = np.concatenate([keypoints[n], scores[n][:, None]], axis=1)[: self._keep]
                box = boxes[n] if boxes is not None else _frame_box(frame_bgr)
                score = float(box_scores[n]) if box_scores is not None else float(kp[:, 2].mean())
                detections.append(Detection(kp, box, score))
        return detections

    def close(self) -> None:
        self._model = None


def _frame_box(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return np.array([0, 0, w, h], dtype=np.float32)
