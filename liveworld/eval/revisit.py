"""Revisits in a recorded episode: frames whose view was seen before, with the view having been
elsewhere in between. Found from the player's pose (x, y, view angle) that episodes recorded
from a simulator keep for evaluation (`Episode.pose`; `liveworld record --policy revisit`
records routes that come back).

A revisit (s, t): at frame t the player stands within `max_dist` map units of where it stood at
frame s <= t - min_gap, looking the same way (within `max_angle` degrees), and some frame
between them looked away (by `away_angle` degrees or `away_dist` units). A model that remembers
frame s can redraw frame t; one that keeps only its last few frames has to invent it.

Knows poses and frame indices; knows nothing about models.
"""

from __future__ import annotations

import numpy as np


def angle_diff(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """|a - b| in degrees, on the circle (0..180)."""
    return np.abs((np.asarray(a) - b + 180.0) % 360.0 - 180.0)


def find_revisits(pose: np.ndarray, min_gap: int = 32, max_dist: float = 24.0, max_angle: float = 10.0,
                  away_angle: float = 60.0, away_dist: float = 64.0) -> list[tuple[int, int]]:
    """pose float [T, 3] -> revisits (s, t), for each t the earliest matching s (each t once)."""
    xy, ang = pose[:, :2].astype(np.float64), pose[:, 2].astype(np.float64)
    out = []
    for t in range(min_gap, len(pose)):
        s = np.arange(0, t - min_gap + 1)
        near = (np.hypot(*(xy[s] - xy[t]).T) <= max_dist) & (angle_diff(ang[s], ang[t]) <= max_angle)
        for s0 in s[near]:
            between = slice(s0 + 1, t)
            if (angle_diff(ang[between], ang[s0]).max(initial=0) >= away_angle
                    or np.hypot(*(xy[between] - xy[s0]).T).max(initial=0) >= away_dist):
                out.append((int(s0), t))
                break
    return out


def revisit_gaps(revisits: list[tuple[int, int]]) -> np.ndarray:
    return np.array([t - s for s, t in revisits], np.int64)


def pick_pairs(poses: list[np.ndarray | None], min_gap: int = 32, max_pairs: int = 32) -> list[tuple[int, int, int]]:
    """Up to `max_pairs` revisits (episode, s, t) with t - s >= min_gap, one per route (the first
    frame of each return), taken in turn from each episode."""
    per_episode = []
    for e, pose in enumerate(poses):
        if pose is None:
            per_episode.append([])
            continue
        first_return: dict[int, int] = {}
        for s, t in find_revisits(pose, min_gap):
            first_return.setdefault(s, t)
        routes, last_t = [], -1
        for s, t in sorted(first_return.items(), key=lambda st: st[1]):
            if t > last_t + 8:  # the next route, not the next frame of the same return
                routes.append((e, s, t))
                last_t = t
        per_episode.append(routes)
    out = []
    while len(out) < max_pairs and any(per_episode):
        for routes in per_episode:
            if routes and len(out) < max_pairs:
                out.append(routes.pop(0))
    return out
