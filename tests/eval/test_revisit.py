import numpy as np

from liveworld.eval.revisit import angle_diff, find_revisits


def pose_track(points):
    return np.array(points, np.float32)


def test_a_spin_in_place_is_a_revisit_of_its_start():
    angles = [(7.0 * i) % 360 for i in range(60)]  # 360 degrees in ~52 steps
    pose = pose_track([(0.0, 0.0, a) for a in angles])
    revisits = find_revisits(pose, min_gap=32)
    assert revisits and all(t - s >= 32 for s, t in revisits)
    s, t = revisits[0]
    assert angle_diff(pose[t, 2], pose[s, 2]) <= 10


def test_walking_straight_on_or_standing_still_is_no_revisit():
    straight = pose_track([(10.0 * i, 0.0, 0.0) for i in range(100)])
    still = pose_track([(0.0, 0.0, 90.0)] * 100)  # the view never left: nothing to remember
    assert find_revisits(straight) == [] and find_revisits(still) == []


def test_angles_wrap_around():
    assert angle_diff(359.0, 1.0) == 2.0 and angle_diff(90.0, 270.0) == 180.0
