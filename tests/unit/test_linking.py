"""Rejoining tracks broken by long detector misses (mocli.keypoints.linking) on synthetic people."""

from __future__ import annotations

import numpy as np

from mocli.keypoints.base import Detection, box_from_keypoints
from mocli.keypoints.linking import link_people, relink_tracks
from mocli.keypoints.tracking import Track, track_detections

# A COCO-17 stick figure, 1 unit = 100 px at scale 1 (x right, y down), centred on the pelvis: box 110 x 330 px,
# so its size (sqrt of the box area) is 190.5 px.
_TEMPLATE = np.array(
    [
        [0, -1.6], [-0.1, -1.7], [0.1, -1.7], [-0.2, -1.65], [0.2, -1.65],
        [-0.4, -1.3], [0.4, -1.3], [-0.5, -0.8], [0.5, -0.8], [-0.55, -0.3], [0.55, -0.3],
        [-0.2, 0.0], [0.2, 0.0], [-0.22, 0.8], [0.22, 0.8], [-0.25, 1.6], [0.25, 1.6],
    ]
)  # fmt: skip
SIZE = float(np.sqrt(110 * 330))


def person(cx: float, cy: float = 400.0, scale: float = 1.0) -> Detection:
    kp = np.concatenate([_TEMPLATE * 100 * scale + [cx, cy], np.full((17, 1), 0.9)], axis=1)
    return Detection(kp, box_from_keypoints(kp), score=0.9)


def track(track_id: int, frames: range, x0: float, vx: float = 0.0, scale: float = 1.0, cy: float = 400.0) -> Track:
    """A person at x0 + vx * (frame - first frame) in each of ``frames``."""
    t = Track(track_id)
    for f in frames:
        t.add(f, person(x0 + vx * (f - frames[0]), cy, scale))
    return t


def test_walker_hidden_for_30_frames_is_one_person():
    per_frame = [[person(100 + 5 * t)] if not 40 <= t < 70 else [] for t in range(100)]
    assert len(track_detections(per_frame)) == 2  # the tracker alone loses him (gap > its max_age)
    assert len(link_people(per_frame, fps=30.0, max_link_gap_s=0)[1]) == 2
    linked, tracks = link_people(per_frame, fps=30.0)
    assert [(t.track_id, t.frames[0], t.frames[-1], t.num_frames) for t in tracks] == [(1, 0, 99, 70)]
    assert {d.track_id for f in linked for d in f} == {1}


def test_jump_covers_distance_within_the_speed_limit():
    # 30 frames missing, last seen 31 frames before: allowed distance = (0.5 + 3.0 x 31 / 30 s) x size = 685.8 px
    a = track(7, range(0, 40), 200.0)
    near, far = track(3, range(70, 100), 200.0 + 675.0), track(3, range(70, 100), 200.0 + 695.0)
    assert [t.frames[0] for t in relink_tracks([a, near], fps=30.0)] == [0]
    assert [t.frames[0] for t in relink_tracks([a, far], fps=30.0)] == [0, 70]


def test_people_who_never_coexist_but_are_far_apart_stay_apart():
    a = track(1, range(0, 40), 100.0)  # leaves at the left
    b = track(2, range(50, 100), 1500.0)  # someone else enters at the right, 1400 px away after 10 missing frames
    joined = relink_tracks([a, b], fps=30.0)
    assert [(t.track_id, t.frames[0], t.frames[-1]) for t in joined] == [(1, 0, 39), (2, 50, 99)]


def test_velocity_carries_a_fast_walker_through_the_gap():
    # 20 px per frame, last seen 31 frames before: 620 px from where he was, where his velocity puts him
    a = track(1, range(0, 20), 100.0, vx=20.0)
    b = track(2, range(50, 80), 100.0 + 20.0 * 50, vx=20.0)
    assert [t.num_frames for t in relink_tracks([a, b], fps=30.0, max_speed=1.0)] == [50]
    assert [t.num_frames for t in relink_tracks([a, b], fps=30.0, max_speed=1.0, margin=0.0)] == [50]


def test_coexisting_tracks_are_never_merged():
    a = track(1, range(0, 50), 300.0)
    b = track(2, range(45, 100), 300.0)  # same place, but overlapping in time (frames 45-49)
    c = track(3, range(50, 100), 300.0, scale=1.0, cy=400.0)  # starts right after a, coexists with b
    joined = relink_tracks([a, b, c], fps=30.0)
    assert sorted((t.frames[0], t.frames[-1]) for t in joined) == [(0, 99), (45, 99)]
    for t in joined:
        assert len(set(t.frames)) == len(t.frames) and t.frames == sorted(t.frames)


def test_different_sizes_are_not_joined_and_each_end_is_used_once():
    a = track(1, range(0, 30), 500.0)
    child = track(2, range(40, 60), 500.0, scale=0.4)  # 2.5 x smaller: someone else
    assert len(relink_tracks([a, child], fps=30.0)) == 2
    # two people vanish, one reappears: the nearer one continues, the other stays alone
    b = track(3, range(0, 30), 800.0)
    again = track(4, range(45, 70), 520.0)
    joined = relink_tracks([a, b, again], fps=30.0)
    assert sorted((t.track_id, t.num_frames) for t in joined) == [(1, 55), (3, 30)]


def test_chains_of_breaks_are_followed_and_gaps_beyond_the_limit_are_not():
    parts = [track(1, range(0, 20), 100.0), track(2, range(40, 60), 150.0), track(3, range(80, 100), 200.0)]
    assert [(t.track_id, t.num_frames) for t in relink_tracks(parts, fps=30.0)] == [(1, 60)]
    assert len(relink_tracks(parts, fps=30.0, max_gap_s=0.5)) == 3  # 20 missing frames = 0.67 s > 0.5 s
    assert [t.num_frames for t in parts] == [20, 20, 20]  # the inputs are not modified


def test_a_fast_mover_broken_into_short_pieces_is_one_person():
    """A person crossing the frame at 60 px per frame (more than the tracker follows: its track breaks every frame)
    is rejoined before short tracks are dropped as flickers: one person over all 30 frames (dropping first kept
    one frame of 30)."""
    per_frame = [[person(100 + 60 * t)] for t in range(30)]
    assert max(t.num_frames for t in track_detections(per_frame)) < 5  # the tracker alone breaks him up
    _, tracks = link_people(per_frame, min_frames=5, fps=30.0)
    assert [(t.track_id, t.num_frames) for t in tracks] == [(1, 30)]


def test_a_two_frame_flicker_beside_a_person_is_still_dropped():
    per_frame = [[person(200 + 2 * t)] + ([person(900, scale=0.5)] if t in (10, 11) else []) for t in range(40)]
    _, tracks = link_people(per_frame, min_frames=5, fps=30.0)
    assert [(t.track_id, t.num_frames) for t in tracks] == [(1, 40)]


def test_a_short_piece_is_not_joined_across_a_long_gap():
    """A 3-frame detection (frames 0-2) and a person who enters 50 frames later, 700 px away: within the long-gap
    rule's reach (6 body sizes after 1.7 s), but a short piece says too little about who it was; it is dropped."""
    per_frame = [[person(600)] if t < 3 else [person(1300 - 5 * (t - 50))] if t >= 50 else [] for t in range(90)]
    _, tracks = link_people(per_frame, min_frames=5, fps=30.0)
    assert [(t.track_id, t.frames[0], t.num_frames) for t in tracks] == [(1, 50, 40)]


def test_a_crouching_crosser_and_the_person_they_hide_keep_their_identities():
    """A crouching person (scale 0.65: box 71.5 x 214.5 px, size 123.8 px) walks right at 10 px per frame past a
    standing one (x = 600, size 190.5 px) who is hidden in frames 10-39 (longer than the tracker bridges); the
    walker is missed in frames 39-44 and comes back 50 px behind where their speed would have taken them (a stop),
    so the tracker breaks their track. The walker's piece ends (frame 38, x = 680; pose centre 28 px lower) 2
    frames before the hidden person's starts again (frame 40, x = 600): from where the walker's velocity would have
    taken it, sqrt(80^2 + 28^2) = 84.8 px, within the allowed (0.5 + 3 x 2 / 30) x 190.5 = 133.4 px, but the sizes
    differ by 1.54 x: cost 84.8 / 133.4 + log(1.54) / log(2) = 1.26 > 1, not joined (it was, and the hidden
    person's first piece then took the walker's second). Each end takes its own person back: two people, neither
    mixed."""
    per_frame = []
    for t in range(60):
        dets = [person(300 + 10 * t, scale=0.65)] if t < 39 else [] if t < 45 else [person(250 + 10 * t, scale=0.65)]
        if not 10 <= t < 40:
            dets.append(person(600))
        per_frame.append(dets)
    assert len(track_detections(per_frame)) == 4  # walker 0-38, 45-59; standing person 0-9, 40-59
    _, tracks = link_people(per_frame, min_frames=5, fps=30.0)
    widths = [sorted({round(float(d.box[2] - d.box[0]), 1) for d in t.detections}) for t in tracks]
    assert widths == [[71.5], [110.0]]
    assert [(t.track_id, t.frames[0], t.num_frames) for t in tracks] == [(1, 0, 60 - 6), (2, 0, 60 - 30)]
