"""A small painter's-algorithm rasteriser (numpy + OpenCV) for ``rendered_mocap.py``: a shaded triangle mesh seen by
a pinhole camera, drawn over a smooth random background, with the body's regions coloured like clothes.

Camera axes throughout: x right, y down, z forward, metres; images are (H,W,3) uint8 BGR (OpenCV's order).
"""

from __future__ import annotations

import cv2
import numpy as np

LIGHT = np.array([-0.3, -0.5, -0.8])  # towards the light (camera axes): up-left in front of the body
AMBIENT = 0.35
NEAR_M = 0.05  # triangles with a vertex closer than this to the camera plane are dropped

# Body regions by each vertex's dominant Anny bone (first matching prefix), BGR base colours.
REGIONS = (
    ("eye", (40, 40, 40)),
    (("foot", "toe"), (35, 35, 40)),  # shoes
    (("pelvis", "upperleg", "lowerleg", "spine05", "root"), (90, 55, 40)),  # dark blue trousers
    (("spine", "clavicle", "shoulder", "upperarm"), (60, 70, 170)),  # red T-shirt
    (("neck", "head", "lowerarm", "wrist", "finger", "metacarpal"), (135, 165, 215)),  # skin
)
GREY = (185, 185, 185)


def face_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V,3) vertices, (F,3) vertex indices -> (F,3) unit normals by the right-hand rule (v1 - v0) x (v2 - v0).

    With outward-wound faces (counter-clockwise seen from outside, as Anny's) they point out of the body.
    """
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    n = np.cross(b - a, c - a)
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def lambert(normals: np.ndarray, colours: np.ndarray, light_dir: np.ndarray = LIGHT, ambient: float = AMBIENT):
    """Lambert shading: ``colour * (ambient + (1 - ambient) * max(0, n . l))``.

    Args:
        normals: (F,3) unit normals; colours: (F,3) base colours 0-255; light_dir: (3,) towards the light (any norm).
    Returns:
        (F,3) float shaded colours 0-255.
    """
    light = np.asarray(light_dir, np.float64) / np.linalg.norm(light_dir)
    diffuse = np.clip(normals @ light, 0.0, None)
    return np.asarray(colours, np.float64) * (ambient + (1.0 - ambient) * diffuse)[:, None]


def render_mesh(
    verts_cam: np.ndarray,
    faces: np.ndarray,
    colours: np.ndarray,
    focal: float,
    centre: np.ndarray,
    background: np.ndarray,
    light_dir: np.ndarray = LIGHT,
    ambient: float = AMBIENT,
) -> np.ndarray:
    """Draw a triangle mesh seen by a pinhole camera at the origin (painter's algorithm).

    Faces facing away from the camera (``n . centroid >= 0``) and faces with a vertex nearer than ``NEAR_M`` are
    dropped; the rest are shaded (``lambert``), sorted by centroid depth and filled far to near with
    ``cv2.fillConvexPoly`` at 1/16 pixel precision.

    Args:
        verts_cam: (V,3) metres, camera axes (x right, y down, z forward).
        faces: (F,3) vertex indices, outward-wound. colours: (F,3) base colours 0-255 (BGR for OpenCV video).
        focal: pixels; centre: (2,) principal point, pixels.
        background: (H,W,3) uint8 image drawn over (not modified).
    Returns:
        (H,W,3) uint8 image.
    """
    image = background.copy()
    tri = verts_cam[faces]  # (F,3,3)
    normals = face_normals(verts_cam, faces)
    centroid = tri.mean(axis=1)
    keep = ((normals * centroid).sum(-1) < 0) & (tri[..., 2].min(axis=1) > NEAR_M)
    if not keep.any():
        return image
    tri, normals, depth = tri[keep], normals[keep], centroid[keep, 2]
    shaded = np.clip(lambert(normals, np.asarray(colours)[keep], light_dir, ambient), 0, 255).round().astype(int)
    px = focal * tri[..., :2] / tri[..., 2:3] + np.asarray(centre)  # (F,3,2) pixels
    pts = np.round(px * 16).astype(np.int32)  # shift=4: 1/16 pixel
    for i in np.argsort(-depth, kind="stable"):  # far to near
        cv2.fillConvexPoly(image, pts[i], shaded[i].tolist(), lineType=cv2.LINE_8, shift=4)
    return image


def recolour(colours: np.ndarray, changes) -> np.ndarray:
    """(F,3) float ``colours`` with every face of one base colour given another: ``changes`` holds (base, new) BGR
    pairs, each base matched in the original ``colours`` (so one change never feeds another)."""
    colours = np.asarray(colours)
    out = np.array(colours, np.float64)
    for base, new in changes:
        out[(colours == np.asarray(base, np.float64)).all(-1)] = new
    return out


def make_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """(H,W,3) uint8 smooth random background: mid-grey, a vertical gradient and low-frequency coloured blobs."""
    grid = rng.normal(0.0, 1.0, (max(2, height // 80), max(2, width // 80), 3)).astype(np.float32)
    blobs = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    gradient = np.linspace(20.0, -20.0, height, dtype=np.float32)[:, None, None]
    return np.clip(125.0 + gradient + 15.0 * blobs, 0, 255).astype(np.uint8)


def region_colours(bone_labels: list[str], vertex_bones: np.ndarray, faces: np.ndarray, look: str) -> np.ndarray:
    """(F,3) base colours: by the dominant bone of each face's first vertex (``REGIONS``), or all ``GREY``.

    Args:
        bone_labels: the body model's bone names; vertex_bones: (V,) index of each vertex's dominant bone.
        faces: (F,3) vertex indices; look: 'person' or 'grey'.
    """
    if look == "grey":
        return np.tile(np.array(GREY, np.float64), (len(faces), 1))
    per_bone = np.tile(np.array(GREY, np.float64), (len(bone_labels), 1))
    for b, name in enumerate(bone_labels):
        for prefixes, colour in REGIONS:
            if name.startswith(prefixes):
                per_bone[b] = colour
                break
    return per_bone[vertex_bones[faces[:, 0]]]
