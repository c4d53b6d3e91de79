"""Files made from a MotionResult besides ``joints3d.npz``: a preview video and BVH motion (see docs/exports.md).

write_bvh(result, path)                  motion.bvh: H36M-17 skeleton, Y up, centimetres, ZXY Euler channels
render_preview(result, path, video)      preview.mp4: the frames with the 2D skeleton beside a 3D panel
"""

from mocli.export.bvh import write_bvh
from mocli.export.render import render_preview

__all__ = ["write_bvh", "render_preview"]
