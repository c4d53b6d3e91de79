"""Scores of ``rendered_mocap.py``: mocli's and MediaPipe's 3D joints against mocap ground truth, per sequence and
overall (PA-MPJPE, MPJPE, skeleton plausibility, detection rate), and the tables that print them. Pure numpy
apart from the printing; joints are H36M-17.
"""

from __future__ import annotations

import numpy as np

from mocli.data.transforms import root_relative
from mocli.metrics import mpjpe, n_mpjpe, pa_mpjpe, skeleton_plausibility
from mocli.skeleton import H36M_LIMBS

PLAUSIBLE = ("bone_length_cv_pct", "asymmetry_pct", "speed_mm_per_frame")


def mean_speed(joints: np.ndarray, scored: np.ndarray) -> float | None:
    """Mean joint speed, mm/frame, of (T,17,3) root-relative mm over the consecutive frame pairs both ``scored``
    ((T,) bool); None without such a pair. A lifter that ignores the motion shows a speed far below the truth's."""
    pairs = scored[1:] & scored[:-1]
    if not pairs.any():
        return None
    return float(np.linalg.norm(np.diff(joints, axis=0)[pairs], axis=-1).mean())


def _plausible(joints: np.ndarray, scored: np.ndarray) -> dict[str, float | None]:
    """Bone-length CV and left/right asymmetry (%) of the scored frames of (T,17,3) root-relative mm
    (``mocli.metrics.skeleton_plausibility``), and their ``mean_speed``."""
    kept = skeleton_plausibility(joints[scored] / 1000.0)
    out = {k: kept[k] for k in PLAUSIBLE[:2]}
    return {**out, "speed_mm_per_frame": mean_speed(joints, scored)}


FRAME_METRICS = (
    "mocli_pa_mpjpe_mm",
    "mediapipe_pa_mpjpe_mm",
    "mocli_limbs_pa_mm",
    "mediapipe_limbs_pa_mm",
    "mocli_mpjpe_mm",
    "mocli_scaled_mpjpe_mm",
    "lifter_pa_mpjpe_mm",
    "lifter_limbs_pa_mm",
)


def score_sequence(
    gt: np.ndarray,
    ours: np.ndarray,
    mediapipe: np.ndarray,
    detected: np.ndarray,
    keypoints2d: np.ndarray | None = None,
    gt_px: np.ndarray | None = None,
    lifter: np.ndarray | None = None,
) -> dict:
    """Scores of one sequence on the frames where MediaPipe detected the person and every input is finite.

    Args:
        gt: (T,17,3) ground-truth joints, metres, camera frame (any root position).
        ours: (T,17,3) mocli joints, metres, camera axes (made root-relative here); NaN where missing.
        mediapipe: (T,17,3) MediaPipe world landmarks in H36M-17 order, metres, MediaPipe's own frame; NaN missing.
        detected: (T,) bool, MediaPipe found the person in that frame.
        keypoints2d, gt_px: optional (T,17,2+) mocli's input keypoints and the ground truth projected, pixels.
        lifter: optional (T,17,3) the lifter's joints alone when ``ours`` has MediaPipe's 3D averaged in
            (``mocli infer --detector-3d``), metres, camera axes; NaN where missing.
    Returns:
        frames, detection_rate (0-1); mocli_pa_mpjpe_mm, mediapipe_pa_mpjpe_mm (per-frame similarity Procrustes);
        mocli_limbs_pa_mm, mediapipe_limbs_pa_mm (the same on the 12 limb joints ``H36M_LIMBS`` only: blind to the
        rig's trunk and to MediaPipe's mid-hip pelvis);
        mocli_mpjpe_mm (as output), mocli_scaled_mpjpe_mm (one least-squares scale for the sequence) and
        mocli_scale (that scale); lifter_pa_mpjpe_mm, lifter_limbs_pa_mm (``lifter``'s, when given, on the
        same frames); keypoints_2d_px (mean 2D distance of the input keypoints to ``gt_px``, when
        given: the detector's share of the error); plausibility {'gt', 'mocli', 'mediapipe'} (bone CV, asymmetry %).
        Metric values are None when no frame is scored.
    """
    if not gt.shape == ours.shape == mediapipe.shape or gt.shape[1:] != (17, 3) or detected.shape != gt.shape[:1]:
        raise ValueError(f"shapes differ: gt {gt.shape}, mocli {ours.shape}, mediapipe {mediapipe.shape}, "
                         f"detected {detected.shape}")  # fmt: skip
    both = detected & np.isfinite(gt).all((1, 2)) & np.isfinite(ours).all((1, 2)) & np.isfinite(mediapipe).all((1, 2))
    if keypoints2d is not None and gt_px is not None:
        both &= np.isfinite(keypoints2d[..., :2]).all((1, 2))
    if lifter is not None:
        both &= np.isfinite(lifter).all((1, 2))
    out: dict = {"frames": int(both.sum()), "detection_rate": float(detected.mean()) if len(detected) else 0.0}
    keys = FRAME_METRICS + ("mocli_scale", "keypoints_2d_px")
    if not both.any():
        return {**out, **dict.fromkeys(keys), "plausibility": {}}
    g_all, p_all, m_all = (root_relative(x.astype(np.float64)) * 1000.0 for x in (gt, ours, mediapipe))
    g, p, m = g_all[both], p_all[both], m_all[both]
    flat_p, flat_g = p.reshape(1, -1, 3), g.reshape(1, -1, 3)  # one "pose" of all frames: one scale per sequence
    out.update(
        mocli_pa_mpjpe_mm=pa_mpjpe(p, g),
        mediapipe_pa_mpjpe_mm=pa_mpjpe(m, g),
        mocli_limbs_pa_mm=pa_mpjpe(p[:, H36M_LIMBS], g[:, H36M_LIMBS]),
        mediapipe_limbs_pa_mm=pa_mpjpe(m[:, H36M_LIMBS], g[:, H36M_LIMBS]),
        mocli_mpjpe_mm=mpjpe(p, g),
        mocli_scaled_mpjpe_mm=n_mpjpe(flat_p, flat_g),
        mocli_scale=float((flat_p * flat_g).sum() / max((flat_p**2).sum(), 1e-12)),
        plausibility={name: _plausible(x, both) for name, x in (("gt", g_all), ("mocli", p_all), ("mediapipe", m_all))},
        keypoints_2d_px=None if gt_px is None else mpjpe(keypoints2d[both, :, :2], gt_px[both, :, :2]),
    )
    if lifter is not None:
        alone = root_relative(lifter.astype(np.float64))[both] * 1000.0
        out.update(lifter_pa_mpjpe_mm=pa_mpjpe(alone, g),
                   lifter_limbs_pa_mm=pa_mpjpe(alone[:, H36M_LIMBS], g[:, H36M_LIMBS]))  # fmt: skip
    return out


def summarise_sweep(rows: list[dict]) -> dict:
    """{weight: {'mocli_pa_mpjpe_mm', 'mocli_limbs_pa_mm'}} over rows with a 'sweep' ({weight: {'frames', the two
    metrics}}): means over all scored frames, as ``summarise``; None where no frame is scored."""
    out: dict = {}
    for w in rows[0]["sweep"] if rows else ():
        scored = [r["sweep"][w] for r in rows if r["sweep"][w]["frames"]]
        total = sum(s["frames"] for s in scored)
        out[w] = {k: sum(s[k] * s["frames"] for s in scored) / total if total else None
                  for k in ("mocli_pa_mpjpe_mm", "mocli_limbs_pa_mm")}  # fmt: skip
    return out


def summarise(rows: list[dict]) -> dict:
    """Overall figures of per-sequence rows (``score_sequence`` + 'num_frames', 'fit_error_mm').

    Frame metrics are means over all scored frames (weighted by each row's frames), the fit error over all rendered
    frames; the detection rate is detected / rendered frames over all sequences; bone CV and asymmetry are means
    over sequences (each sequence is one body).
    """
    scored = [r for r in rows if r["frames"]]
    total = sum(r["frames"] for r in scored)
    out: dict = {"sequences": len(rows), "frames": total, "rendered_frames": sum(r["num_frames"] for r in rows)}
    out["detection_rate"] = sum(r["detection_rate"] * r["num_frames"] for r in rows) / max(out["rendered_frames"], 1)
    for key in FRAME_METRICS + ("keypoints_2d_px",):
        values = [r.get(key) for r in scored]
        known = total and all(v is not None for v in values)
        out[key] = sum(v * r["frames"] for v, r in zip(values, scored, strict=True)) / total if known else None
    fit = [r for r in rows if r.get("fit_error_mm") is not None]
    n_fit = sum(r["num_frames"] for r in fit)
    out["fit_error_mm"] = sum(r["fit_error_mm"] * r["num_frames"] for r in fit) / n_fit if n_fit else None
    out["plausibility"] = {}
    for who in ("gt", "mocli", "mediapipe") if scored else ():
        for k in PLAUSIBLE:
            values = [r["plausibility"][who][k] for r in scored if r["plausibility"][who][k] is not None]
            out["plausibility"].setdefault(who, {})[k] = float(np.mean(values)) if values else None
    return out


# --- report -----------------------------------------------------------------------------------------------------------


def cell(value, digits: int = 1) -> str:
    """A table cell: ``value`` with ``digits`` decimals, "-" for None."""
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(rows: list[dict], overall: dict, groups: dict[str, dict] | None = None) -> None:
    """Two tables (accuracy, skeleton plausibility) per sequence, per group (``summarise`` of each, when given) and
    overall."""
    summaries = [dict(g, name=f"group {name}", mocli_scale=None) for name, g in (groups or {}).items()]
    print(f"\n{'sequence':34} {'frames':>6} {'det %':>6} {'fit mm':>7} {'2D px':>6} {'PA mocli':>9} {'PA MP':>7} "
          f"{'limbs mocli':>11} {'limbs MP':>8} {'MPJPE mocli':>11} {'scaled':>7} {'scale':>6} "
          f"{'PA lifter':>9} {'limbs lifter':>12}")  # fmt: skip
    for r in rows + summaries + [dict(overall, name="overall", mocli_scale=None)]:
        print(f"{r['name'][:34]:34} {r['frames']:>6} {100 * r['detection_rate']:>6.1f} {cell(r['fit_error_mm']):>7} "
              f"{cell(r.get('keypoints_2d_px')):>6} "
              f"{cell(r['mocli_pa_mpjpe_mm']):>9} {cell(r['mediapipe_pa_mpjpe_mm']):>7} "
              f"{cell(r.get('mocli_limbs_pa_mm')):>11} {cell(r.get('mediapipe_limbs_pa_mm')):>8} "
              f"{cell(r['mocli_mpjpe_mm']):>11} "
              f"{cell(r['mocli_scaled_mpjpe_mm']):>7} {cell(r['mocli_scale'], 2):>6} "
              f"{cell(r.get('lifter_pa_mpjpe_mm')):>9} {cell(r.get('lifter_limbs_pa_mm')):>12}")  # fmt: skip
    print(f"\n{'bone CV % / asym % / speed mm/f':34} {'GT':>21} {'mocli':>21} {'MediaPipe':>21}")
    for r in rows + summaries + [dict(overall, name="overall (mean of sequences)")]:
        p = r["plausibility"]
        cells = [" / ".join(cell(p[w][k], 2) for k in PLAUSIBLE) if w in p else "-"
                 for w in ("gt", "mocli", "mediapipe")]  # fmt: skip
        print(f"{r['name'][:34]:34} " + " ".join(f"{c:>21}" for c in cells))


def print_sweep(overall: dict, groups: dict[str, dict] | None = None) -> None:
    """PA-MPJPE / limbs PA-MPJPE for each swept weight of MediaPipe's 3D, overall and per group."""
    weights = list(overall["sweep"])
    print(f"\n{'--detector-3d: PA / limbs':34} " + " ".join(f"{w:>13}" for w in weights))
    for name, summary in [*((f"group {n}", g) for n, g in (groups or {}).items()), ("overall", overall)]:
        cells = [f"{cell(v['mocli_pa_mpjpe_mm'])} / {cell(v['mocli_limbs_pa_mm'])}" for v in summary["sweep"].values()]
        print(f"{name[:34]:34} " + " ".join(f"{c:>13}" for c in cells))
