"""Virtual cameras: projection by hand, round trips, orthographic vs pinhole, random views."""

from __future__ import annotations

import numpy as np
import pytest

from mocli.data.cameras import (
    Camera,
    ViewRange,
    camera_to_world,
    focal_from_fov,
    horizontal_basis,
    image_25d,
    look_at,
    project_orthographic,
    project_perspective,
    sample_camera,
    up_vector,
    world_to_camera,
)


def _standing_clip(num_frames: int = 10, up: str = "y") -> np.ndarray:
    """(T, 17, 3) a crude upright skeleton walking along world x, metres (pelvis 0.9 m up, head top 1.7 m)."""
    heights = np.array([0.9, 0.9, 0.5, 0.1, 0.9, 0.5, 0.1, 1.15, 1.4, 1.5, 1.7, 1.4, 1.15, 0.9, 1.4, 1.15, 0.9])
    side = np.array([0, -1, -1, -1, 1, 1, 1, 0, 0, 0, 0, 1.2, 1.3, 1.3, -1.2, -1.3, -1.3]) * 0.15
    pose = np.stack([np.zeros(17), heights, side], axis=-1)
    clip = pose[None] + np.linspace(0, 1, num_frames)[:, None, None] * np.array([1.0, 0.0, 0.0])
    return clip if up == "y" else clip[..., [0, 2, 1]] * np.array([1, -1, 1])  # y-up -> z-up, proper rotation


def test_project_a_known_point_by_hand():
    # camera 5 m in front of the origin on -z, looking at it, y up: its right is world -x, its down is world -y
    R = look_at(np.array([0.0, 0.0, -5.0]), np.zeros(3), up_vector("y"))
    np.testing.assert_allclose(R, [[-1, 0, 0], [0, -1, 0], [0, 0, 1]], atol=1e-12)
    t = -R @ np.array([0.0, 0.0, -5.0])
    cam_pt = world_to_camera(np.array([1.0, 2.0, 0.0]), R, t)
    np.testing.assert_allclose(cam_pt, [-1.0, -2.0, 5.0])
    uv = project_perspective(cam_pt, 1000.0, np.array([500.0, 500.0]))
    np.testing.assert_allclose(uv, [500 - 1000 * 1 / 5, 500 - 1000 * 2 / 5])  # (300, 100): left of and above centre


def test_world_camera_round_trip():
    rng = np.random.default_rng(0)
    cam = sample_camera(rng, _standing_clip(), "y", ViewRange())
    pts = rng.normal(size=(5, 17, 3))
    np.testing.assert_allclose(camera_to_world(world_to_camera(pts, cam.R, cam.t), cam.R, cam.t), pts, atol=1e-12)
    np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(cam.R) == pytest.approx(1.0)  # proper rotation: images are never mirrored


def test_orthographic_matches_perspective_for_a_far_subject():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-0.5, 0.5, size=(17, 3)) + np.array([0.0, 0.0, 200.0])  # a 1 m body 200 m away
    centre = np.array([500.0, 500.0])
    persp = project_perspective(pts, 2000.0, centre)
    ortho = project_orthographic(pts, 2000.0, centre, depth=200.0)
    assert np.abs(persp - ortho).max() < 0.05  # pixels
    near = pts - np.array([0.0, 0.0, 197.0])  # 3 m away the two differ visibly
    assert np.abs(project_perspective(near, 2000.0, centre) - project_orthographic(near, 2000.0, centre, 3.0)).max() > 5


def test_focal_from_fov():
    assert focal_from_fov(90.0, 1000) == pytest.approx(500.0)


@pytest.mark.parametrize("up", ["y", "z"])
def test_random_views_cover_every_yaw_and_keep_the_subject_upright(up):
    rng = np.random.default_rng(2)
    clip = _standing_clip(up=up)
    up_vec = up_vector(up)
    view = ViewRange()
    azimuths = []
    for _ in range(600):
        cam: Camera = sample_camera(rng, clip, up, view)
        offset = cam.position - clip[:, 0].mean(axis=0)
        horizontal = offset - up_vec * (offset @ up_vec)
        azimuths.append(np.arctan2(horizontal @ np.roll(up_vec, 1), horizontal @ np.roll(up_vec, 2)))
        cam_pts = world_to_camera(clip, cam.R, cam.t)
        assert cam_pts[..., 2].min() >= view.min_depth_m - 1e-9
        dist = np.linalg.norm(offset)
        assert view.distance_m[0] - 1e-9 <= dist <= view.distance_m[1] + 1e-9  # the subject never needed a back-off
        uv = project_perspective(cam_pts, cam.focal, cam.centre)
        assert (uv[:, 10, 1] < uv[:, 0, 1]).all()  # head top above the pelvis in the image (y down)
        elevation = np.degrees(np.arcsin((offset @ up_vec) / dist))
        assert view.pitch_deg[0] - 1e-6 <= elevation <= view.pitch_deg[1] + 1e-6
    counts = np.histogram(azimuths, bins=12, range=(-np.pi, np.pi))[0]
    assert counts.min() > 0.5 * 600 / 12  # every 30-degree sector is used, roughly uniformly


def test_image_25d_label_is_metric_at_the_root_depth():
    cam = Camera(R=np.eye(3), t=np.zeros(3), focal=1000.0, centre=np.array([500.0, 500.0]), image_size=(1000, 1000))
    pts = np.array([[[0.0, 0.0, 4.0], [0.2, -0.4, 4.0], [0.0, 0.0, 4.5]]])  # (T=1, J=3, 3) metres
    label, m_per_px = image_25d(pts, cam)
    np.testing.assert_allclose(m_per_px, [4.0 / 1000.0])
    np.testing.assert_allclose(label[0, 0], [500.0, 500.0, 0.0])
    np.testing.assert_allclose((label[0, 1] - label[0, 0]) * m_per_px[0], [0.2, -0.4, 0.0], atol=1e-12)
    np.testing.assert_allclose(label[0, 2, 2] * m_per_px[0], 0.5)  # depth 0.5 m behind the root
    ortho, m_ortho = image_25d(pts, cam, orthographic=True)
    np.testing.assert_allclose(ortho[0, :2], label[0, :2])  # same at the root depth
    np.testing.assert_allclose(m_ortho, m_per_px)


def test_a_camera_in_front_shows_the_left_side_on_the_image_right():
    # y up, the subject faces +z so its left is +x (SMPL/H36M convention); a camera in front of it looks along -z
    left, right = np.array([0.2, 1.0, 0.0]), np.array([-0.2, 1.0, 0.0])
    position = np.array([0.0, 1.0, 4.0])
    R = look_at(position, np.array([0.0, 1.0, 0.0]), up_vector("y"))
    t = -R @ position
    u_left, u_right = project_perspective(world_to_camera(np.stack([left, right]), R, t), 1000.0, np.zeros(2))[:, 0]
    assert u_left > 0 > u_right  # not mirrored: the viewer sees the subject's left on the right of the image


@pytest.mark.parametrize("up", ["y", "-z"])
def test_horizontal_basis_is_orthonormal_and_right_handed(up):
    u = up_vector(up)
    h0, h1 = horizontal_basis(u)
    np.testing.assert_allclose(np.stack([h0, h1, u]) @ np.stack([h0, h1, u]).T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.cross(h0, h1), u, atol=1e-12)


def test_aim_offset_raises_a_level_camera_by_hand():
    clip = _standing_clip()  # pelvis 0.9 m up, walking 1 m along x: mean pelvis (0.5, 0.9, 0)
    view = ViewRange(yaw_deg=(0.0, 0.0), pitch_deg=(0.0, 0.0), roll_deg=0.0, distance_m=(4.0, 4.0),
                     aim_offset_m=(0.6, 0.6))  # fmt: skip
    cam = sample_camera(np.random.default_rng(0), clip, "y", view)
    aim = np.array([0.5, 1.5, 0.0])
    np.testing.assert_allclose(cam.position, aim + 4.0 * np.array([0.0, 0.0, 1.0]), atol=1e-12)  # yaw 0: along +z
    np.testing.assert_allclose(cam.R[2], [0.0, 0.0, -1.0], atol=1e-12)  # level: it looks along -z
    np.testing.assert_allclose(project_perspective(world_to_camera(aim, cam.R, cam.t), cam.focal, cam.centre),
                               cam.centre, atol=1e-9)  # fmt: skip
    pelvis = project_perspective(world_to_camera(clip[:, 0].mean(0), cam.R, cam.t), cam.focal, cam.centre)
    assert pelvis[1] == pytest.approx(cam.centre[1] + cam.focal * 0.6 / 4.0)  # the pelvis 0.6 m below the axis


def test_no_aim_offset_draws_nothing_and_an_offset_one_number_more():
    clip = _standing_clip()
    for aim, draws in (((0.0, 0.0), 5), ((-0.5, 0.7), 6)):
        rng, replay = np.random.default_rng(3), np.random.default_rng(3)
        sample_camera(rng, clip, "y", ViewRange(aim_offset_m=aim))
        replay.random(draws)  # yaw, pitch, roll, distance, field of view (, aim offset): one double each
        assert rng.random() == replay.random()


def test_wide_views_stay_in_range_and_out_of_the_body():
    """The ranges of the generalise preset: pitch -20..60, roll 15, 2-10 m, 20-100 degrees, aim -0.5..0.7 m."""
    rng = np.random.default_rng(7)
    clip = _standing_clip()
    view = ViewRange(pitch_deg=(-20.0, 60.0), roll_deg=15.0, distance_m=(2.0, 10.0), fov_deg=(20.0, 100.0),
                     aim_offset_m=(-0.5, 0.7))  # fmt: skip
    pelvis = clip[:, 0].mean(axis=0)
    heights, elevations = [], []
    for _ in range(500):
        cam = sample_camera(rng, clip, "y", view)
        cam_pts = world_to_camera(clip, cam.R, cam.t)
        assert cam_pts[..., 2].min() >= view.min_depth_m - 1e-9  # never inside or at the body
        fov = 2 * np.degrees(np.arctan(cam.image_size[0] / 2 / cam.focal))
        assert 20.0 - 1e-9 <= fov <= 100.0 + 1e-9
        # the aim point is on the optical axis, above or below the pelvis: recover its height and the pitch
        axis = cam.R[2]
        s = (pelvis[0] - cam.position[0]) / axis[0] if abs(axis[0]) > 1e-6 else (pelvis[2] - cam.position[2]) / axis[2]
        aim = cam.position + s * axis
        heights.append(aim[1] - pelvis[1])
        elevations.append(np.degrees(np.arcsin(-axis[1])))
        uv = project_perspective(cam_pts, cam.focal, cam.centre)
        assert (uv[:, 10, 1] < uv[:, 0, 1]).all()  # the head is still above the pelvis in the image
    assert -0.5 - 1e-6 <= min(heights) and max(heights) <= 0.7 + 1e-6 and np.ptp(heights) > 1.0
    assert -20 - 1e-6 <= min(elevations) and max(elevations) <= 60 + 1e-6 and np.ptp(elevations) > 70
