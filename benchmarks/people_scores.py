"""Scores of ``rendered_people.py``: who is who (tracks matched to ground-truth people per frame), identity switches,
detector speed per number of people, and camera-space trajectories against ground truth. Pure numpy + scipy.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.optimize import linear_sum_assignment

DEPTH_MARGIN_M = 0.2  # depth order is scored for pairs of people whose true depths differ by more than this


def match_tracks(track_px: np.ndarray, gt_px: np.ndarray, gate_px: np.ndarray) -> np.ndarray:
    """Per frame, the track that is each ground-truth person: the assignment of least total 2D distance (Hungarian)
    among pairs closer than the person's gate. The distance of a track to a person is the mean over the joints of
    the pixel distance (joints NaN in the track left out): the whole body, so that a pose that slips off its
    person, or two pelvises that meet when one person passes in front of another, are not mistaken.

    Args:
        track_px: (N,T,J,2) each track's joints, pixels; NaN where the track has no output.
        gt_px: (G,T,J,2) each person's projected joints, pixels.
        gate_px: (G,T) the largest distance, pixels, at which a track can be that person.
    Returns:
        (T,G) int: index of the track matched to each person, -1 where none is.
    """
    n, g = len(track_px), len(gt_px)
    out = np.full((gt_px.shape[1], g), -1, int)
    if n == 0:
        return out
    for t in range(gt_px.shape[1]):
        per_joint = np.linalg.norm(gt_px[:, None, t] - track_px[None, :, t], axis=-1)  # (G,N,J)
        seen = np.isfinite(per_joint)
        with np.errstate(invalid="ignore"):
            dist = np.where(seen, per_joint, 0.0).sum(-1) / seen.sum(-1)  # (G,N), NaN for a track without joints
        allowed = np.isfinite(dist) & (dist < gate_px[:, t, None])
        if not allowed.any():
            continue
        rows, cols = linear_sum_assignment(np.where(allowed, dist, 1e9))
        for r, c in zip(rows, cols, strict=True):
            if allowed[r, c]:
                out[t, r] = c
    return out


def identity_counts(matched: np.ndarray, track_ids: list[int]) -> dict:
    """Identity errors of a (T,G) matching (``match_tracks``; -1 = no track), CLEAR-MOT style.

    Returns:
        id_switches: per person, how often the matched track differs from the one matched last (frames without a
        match skipped); tracks_per_person: per person, the number of distinct tracks matched; fragmented_people:
        people matched by more than one track; impure_tracks: track ids matched to more than one person (a swap
        or a merge); unmatched_tracks: track ids never matched to anyone.
    """
    switches, per_person, people_of = [], [], defaultdict(set)
    for g in range(matched.shape[1]):
        seen = [int(i) for i in matched[:, g] if i >= 0]
        switches.append(int(sum(a != b for a, b in zip(seen, seen[1:], strict=False))))
        per_person.append(len(set(seen)))
        for i in set(seen):
            people_of[i].add(g)
    return {
        "id_switches": switches,
        "tracks_per_person": per_person,
        "fragmented_people": int(sum(n > 1 for n in per_person)),
        "impure_tracks": sorted(track_ids[i] for i, gs in people_of.items() if len(gs) > 1),
        "unmatched_tracks": sorted(track_ids[i] for i in range(len(track_ids)) if i not in people_of),
    }


def gather(per_track: np.ndarray, matched: np.ndarray) -> np.ndarray:
    """(N,T,...) per-track arrays -> (G,T,...) per person through a (T,G) matching; NaN where unmatched."""
    shape = (matched.shape[1], matched.shape[0], *per_track.shape[2:])
    out = np.full(shape, np.nan)
    for g in range(matched.shape[1]):
        frames = np.flatnonzero(matched[:, g] >= 0)
        out[g, frames] = per_track[matched[frames, g], frames]
    return out


def fps_by_count(counts: list[int], seconds: list[float]) -> dict[int, dict]:
    """Frames/s of a detector per number of people it found in the frame: {count: {"frames", "fps"}}."""
    by_count: dict[int, list[float]] = defaultdict(list)
    for n, s in zip(counts, seconds, strict=True):
        by_count[int(n)].append(s)
    return {n: {"frames": len(v), "fps": len(v) / sum(v)} for n, v in sorted(by_count.items())}


def _pairs(g: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(g) for j in range(i + 1, g)]


def score_trajectories(pred: np.ndarray, gt: np.ndarray, margin_m: float = DEPTH_MARGIN_M) -> dict:
    """Camera-space pelvis positions of several people against ground truth (both (G,T,3) metres, camera frame).

    Scored frames: both finite. ``scale``: the one least-squares factor about the camera centre for the whole video
    (``sum(p . g) / sum(p . p)``; monocular depth is known up to the body's size). Distances between people are
    scored on the frames where both are scored, depth order on those of them where the true depths differ by more
    than ``margin_m``.

    Returns:
        frames; root_error_mm (mean 3D distance), depth_error_mm (mean |z error|), scale, scaled_root_error_mm;
        pair_frames, distance_error_mm and scaled_distance_error_mm (mean |predicted - true distance between two
        people|), depth_order_frames, depth_order_pct (pairs whose nearer person is right). None when nothing is
        scored.
    """
    if pred.shape != gt.shape or pred.shape[-1] != 3:
        raise ValueError(f"shapes differ: pred {pred.shape}, gt {gt.shape}")
    ok = np.isfinite(pred).all(-1) & np.isfinite(gt).all(-1)  # (G,T)
    keys = ("root_error_mm", "depth_error_mm", "scale", "scaled_root_error_mm", "distance_error_mm",
            "scaled_distance_error_mm", "depth_order_pct")  # fmt: skip
    out: dict = {"frames": int(ok.sum()), "pair_frames": 0, "depth_order_frames": 0, **dict.fromkeys(keys)}
    if not ok.any():
        return out
    p, g = pred[ok], gt[ok]
    scale = float((p * g).sum() / max((p * p).sum(), 1e-12))
    out.update(root_error_mm=1000 * float(np.linalg.norm(p - g, axis=-1).mean()),
               depth_error_mm=1000 * float(np.abs(p[:, 2] - g[:, 2]).mean()), scale=scale,
               scaled_root_error_mm=1000 * float(np.linalg.norm(scale * p - g, axis=-1).mean()))  # fmt: skip
    dist_err, order = [], []
    for i, j in _pairs(len(gt)):
        both = ok[i] & ok[j]
        d_pred = np.linalg.norm(pred[i, both] - pred[j, both], axis=-1)
        d_gt = np.linalg.norm(gt[i, both] - gt[j, both], axis=-1)
        dist_err.append(np.stack([d_pred, d_gt], -1))
        dz_pred, dz_gt = pred[i, both, 2] - pred[j, both, 2], gt[i, both, 2] - gt[j, both, 2]
        apart = np.abs(dz_gt) > margin_m
        order.append(np.sign(dz_pred[apart]) == np.sign(dz_gt[apart]))
    d = np.concatenate(dist_err) if dist_err else np.zeros((0, 2))
    right = np.concatenate(order) if order else np.zeros(0, bool)
    out.update(pair_frames=len(d), depth_order_frames=int(len(right)))
    if len(d):
        out.update(distance_error_mm=1000 * float(np.abs(d[:, 0] - d[:, 1]).mean()),
                   scaled_distance_error_mm=1000 * float(np.abs(scale * d[:, 0] - d[:, 1]).mean()))  # fmt: skip
    if len(right):
        out["depth_order_pct"] = 100 * float(right.mean())
    return out


def _weighted(rows: list[dict], key: str, weight: str) -> float | None:
    """Mean of ``row[key]`` weighted by ``row[weight]`` over the rows where both are known and the weight > 0."""
    pairs = [(r[key], r[weight]) for r in rows if r.get(key) is not None and r.get(weight)]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def pool_scenes(scenes: list[dict], timings: list[dict[str, tuple[list[int], list[float]]]]) -> dict:
    """Figures over several scenes (each: "people" rows with "num_frames" and "frames" scored, "identity",
    "trajectory"; and per scene {table: (people found per frame, seconds per frame)}): frames/s from every timed
    frame; per-person rates weighted by frames, joint errors by scored frames; identity counts summed; trajectory
    errors weighted by their (pair-)frames (each scene keeps its own scale)."""
    people = [r for s in scenes for r in s["people"]]
    fps: dict[str, dict] = {}
    for name in dict.fromkeys(k for t in timings for k in t):
        runs = [t[name] for t in timings if name in t]
        fps[name] = fps_by_count([c for r in runs for c in r[0]], [x for r in runs for x in r[1]])
    out = {"people": len(people), "tracks": sum(s["identity"]["tracks"] for s in scenes), "detector_fps": fps}
    out.update({k: _weighted(people, k, "num_frames") for k in ("in_view_pct", "detected_pct", "output_pct")})
    out.update({k: _weighted(people, k, "frames") for k in ("keypoints_2d_px", "mocli_pa_mpjpe_mm", "mocli_mpjpe_mm",
                                                           "mediapipe_pa_mpjpe_mm")})  # fmt: skip
    ident = [s["identity"] for s in scenes]
    out.update(id_switches=sum(sum(i["id_switches"]) for i in ident),
               fragmented_people=sum(i["fragmented_people"] for i in ident),
               impure_tracks=sum(len(i["impure_tracks"]) for i in ident),
               unmatched_tracks=sum(len(i["unmatched_tracks"]) for i in ident))  # fmt: skip
    traj = [s["trajectory"] for s in scenes]
    out["trajectory"] = {k: _weighted(traj, k, "frames") for k in ("root_error_mm", "depth_error_mm",
                                                                   "scaled_root_error_mm")}  # fmt: skip
    out["trajectory"].update({k: _weighted(traj, k, "pair_frames") for k in ("distance_error_mm",
                                                                            "scaled_distance_error_mm")})  # fmt: skip
    out["trajectory"]["depth_order_pct"] = _weighted(traj, "depth_order_pct", "depth_order_frames")
    return out
