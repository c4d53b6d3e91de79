"""Where each data file puts the joints of H36M-17: the rig conventions that a lifter trained on several files learns.

Mocap rigs do not agree on where a joint sits. Mapped to H36M-17 (``mocli.data.rigs``), one rig's "thorax" is the
base of the neck and another's the top of the chest, one rig's hips are the hip joint centres and another's the
pelvis bone's corners, one rig's "pelvis" is the middle of the hips and another's the back of the pelvis. A lifter
sees only 2D and must output each file's convention, so how far apart the conventions are bounds how well one lifter
fits all files (and a held-out file's convention is part of its error).

For each file (the first ``--sequences`` sequences of every split), in mm, medians over frames then means over
sequences: the length of every bone, and the position of the shoulders, neck/nose and head relative to the thorax
and of the hips relative to the pelvis in the body's own frame (x to the body's left, along right hip -> left hip;
y up the trunk, pelvis -> thorax made orthogonal to x; z forward, x cross y).

    python benchmarks/rig_conventions.py --data bandai.h5 --data cmu_dance.h5 --data reactidle.h5 \\
        --data hdm05.h5 [--sequences 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mocli.bones import bone_lengths  # noqa: E402
from mocli.data.h5 import open_dataset  # noqa: E402
from mocli.skeleton import H36M_17  # noqa: E402

NAMES = H36M_17.joint_names
PELVIS, R_HIP, L_HIP, THORAX = 0, 1, 4, 8
FROM_THORAX = (11, 14, 9, 10)  # shoulders, neck/nose, head
FROM_PELVIS = (4, 1)  # hips


def body_frame(joints: np.ndarray) -> np.ndarray:
    """(T,17,3) joints -> (T,3,3) rotations whose rows are the body's left, up and forward unit axes per frame.

    Left: right hip -> left hip; up: pelvis -> thorax without its left component; forward: left x up. ``R @ v``
    gives a world vector ``v`` in the body's frame."""
    left = joints[:, L_HIP] - joints[:, R_HIP]
    left = left / np.linalg.norm(left, axis=-1, keepdims=True)
    up = joints[:, THORAX] - joints[:, PELVIS]
    up = up - np.sum(up * left, axis=-1, keepdims=True) * left
    up = up / np.linalg.norm(up, axis=-1, keepdims=True)
    return np.stack([left, up, np.cross(left, up)], axis=1)


def conventions(joints: np.ndarray) -> dict[str, np.ndarray]:
    """(T,17,3) metres -> medians over frames, mm: 'bones' (16,) lengths of the bones ending at joints 1-16 and
    'offsets' (17,3) each joint relative to the thorax (FROM_THORAX) or the pelvis (FROM_PELVIS) in the body's frame
    (zeros for other joints)."""
    rot = body_frame(joints)
    offsets = np.zeros((len(joints), len(NAMES), 3))
    for origin, members in ((THORAX, FROM_THORAX), (PELVIS, FROM_PELVIS)):
        rel = joints[:, list(members)] - joints[:, origin : origin + 1]
        offsets[:, list(members)] = np.einsum("tij,tkj->tki", rot, rel)
    return {"bones": 1000 * np.median(bone_lengths(joints), axis=0), "offsets": 1000 * np.median(offsets, axis=0)}


def file_conventions(path: Path, sequences: int) -> dict[str, np.ndarray]:
    """Means over the first ``sequences`` sequences of a file (every split) of ``conventions``."""
    rows = []
    with open_dataset(path) as ds:
        for ref in list(ds.sequences(None))[:sequences]:
            seq = ref.load()
            if seq.joints3d is not None and len(seq.joints3d):
                rows.append(conventions(np.asarray(seq.joints3d, np.float64)))
    if not rows:
        sys.exit(f"{path}: no 3D sequences")
    return {k: np.mean([r[k] for r in rows], axis=0) for k in rows[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, action="append", required=True, help="mocli HDF5 file with 3D joints")
    ap.add_argument("--sequences", type=int, default=30, help="sequences read per file")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    found = {p.stem: file_conventions(p, args.sequences) for p in args.data}
    width = max(len(k) for k in found) + 2
    print("bone lengths (mm), by the bone's child joint")
    print(f"{'':17}" + "".join(f"{k:>{width}}" for k in found))
    for j in range(1, len(NAMES)):
        print(f"{NAMES[j]:17}" + "".join(f"{v['bones'][j - 1]:>{width}.0f}" for v in found.values()))
    print("\nposition in the body's frame (mm: left, up, forward) from the thorax (arms, neck, head) or pelvis")
    for j in FROM_THORAX + FROM_PELVIS:
        cells = "".join(f"{' '.join(f'{x:.0f}' for x in v['offsets'][j]):>{width + 8}}" for v in found.values())
        print(f"{NAMES[j]:17}{cells}")
    if args.json:
        args.json.write_text(json.dumps({k: {n: a.tolist() for n, a in v.items()} for k, v in found.items()}))


if __name__ == "__main__":
    main()
