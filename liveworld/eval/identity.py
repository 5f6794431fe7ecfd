"""Which world a frame shows: the classifier behind `world_kept_at_1000`.

A nearest-centroid classifier on autoencoder latents. Features of a frame's latent [C, h, w]:
for each channel, its mean over each cell of a 2 x 2 grid and its standard deviation over the
grid (5 C numbers, comparable across worlds of different shapes; the deviation sees texture,
which a mean alone misses), each scaled by its spread over the world's real frames. Each class
is represented by up to PROTOTYPES centroids (k-means of its frames' features, so that a world
of many rooms is not one blurred average); a frame belongs to the class of its nearest centroid.

The classes a stream of world X can land in:
    X                        the real held-out frames of X
    every other world        their real frames (a model of several worlds), so drifting into
                             another world counts as leaving X
    degenerate frames        what a model that forgot X tends to show: a flat grey frame, a flat
                             frame of X's mean colour, X's mean frame, that mean frame blurred,
                             and X's real frames blurred (a Gaussian of sigma = width / 16)
A stream kept its world if its last frame lands in X. For a one-world model, "kept" thus means
closer to the real world's frames than to a blank, a flat or a blurred picture of it. With one
centroid per class, real held-out Doom frames landed in their own world only 83% of the time
(probes on the bundled weights), so a class gets several; `kept_fraction_real` applies the same
rule to real frames the centroids were not fitted on, the ceiling a model can reach.

Knows latents and pixels; knows nothing about models or sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

PROTOTYPES = 16
BLUR_OF_WIDTH = 1 / 16
MAX_FRAMES = 1024  # real frames a class is fitted on (evenly subsampled)


def features(z: torch.Tensor) -> torch.Tensor:
    """Latents [N, C, h, w] -> [N, 5 C]: per channel, its 2 x 2 grid of means and its spatial std."""
    z = z.float()
    return torch.cat([F.adaptive_avg_pool2d(z, 2).flatten(1), z.flatten(2).std(2)], 1)


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """[N, 3, H, W] blurred by a separable Gaussian of `sigma` pixels (edges replicated)."""
    r = max(1, round(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    C = frames.shape[1]
    f = F.pad(frames.float(), (r, r, r, r), mode="replicate")
    f = F.conv2d(f, g.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(f, g.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


def subsample(x: torch.Tensor, n: int = MAX_FRAMES) -> torch.Tensor:
    """At most n rows, evenly spaced."""
    return x if len(x) <= n else x[torch.linspace(0, len(x) - 1, n).long()]


def degenerate_frames(real: torch.Tensor) -> dict[str, torch.Tensor]:
    """The pictures of a forgotten world, made from its real frames [N, 3, H, W]."""
    mean = real.mean(0, keepdim=True)
    sigma = real.shape[-1] * BLUR_OF_WIDTH
    return {
        "flat grey": torch.full_like(mean, 0.5),
        "flat mean colour": real.mean((0, 2, 3)).view(1, 3, 1, 1).expand_as(mean).contiguous(),
        "mean frame": mean,
        "mean frame blurred": gaussian_blur(mean, sigma),
        "real frames blurred": gaussian_blur(subsample(real, MAX_FRAMES // 2), sigma),
    }


def kmeans(x: torch.Tensor, k: int, iters: int = 25, seed: int = 0) -> torch.Tensor:
    """k centroids of x [N, F] (Lloyd's algorithm from k distinct random rows)."""
    k = min(k, len(x))
    g = torch.Generator().manual_seed(seed)
    c = x[torch.randperm(len(x), generator=g)[:k]].clone()
    for _ in range(iters):
        a = torch.cdist(x, c).argmin(1)
        for j in range(k):
            if (a == j).any():
                c[j] = x[a == j].mean(0)
    return c


@dataclass
class WorldClassifier:
    world: str
    labels: list[str]  # the class of each centroid
    centroids: torch.Tensor  # [M, F], scaled
    scale: torch.Tensor  # [F]

    @classmethod
    def fit(cls, world: str, groups: dict[str, torch.Tensor], seed: int = 0) -> WorldClassifier:
        """groups: class name -> features [N, F]; `world` names the class streams start in."""
        scale = groups[world].std(0) + 1e-6 if len(groups[world]) > 1 else torch.ones(groups[world].shape[1])
        labels, cents = [], []
        for name, f in groups.items():
            c = kmeans(f / scale, PROTOTYPES, seed=seed)
            labels += [name] * len(c)
            cents.append(c)
        return cls(world, labels, torch.cat(cents), scale)

    def assign(self, feats: torch.Tensor) -> list[str]:
        return [self.labels[i] for i in torch.cdist(feats / self.scale, self.centroids).argmin(1).tolist()]

    def kept(self, feats: torch.Tensor) -> torch.Tensor:
        """[N] bool: the frame lands in the world the stream started in."""
        return torch.tensor([a == self.world for a in self.assign(feats)], dtype=torch.bool)


def classes(world: str, tok, real: torch.Tensor, real_latents: torch.Tensor,
            others: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every class's features: the world's real latents [N, C, h, w] (frames `real` [N, 3, H, W]),
    the other worlds' real latents, and the degenerate frames encoded by the world's autoencoder."""
    groups = {world: features(subsample(real_latents))}
    for name, z in others.items():
        if name != world and len(z):
            groups[name] = features(subsample(z))
    with torch.no_grad():
        for name, frames in degenerate_frames(real).items():
            groups[name] = features(torch.cat([tok.video.encode(b) for b in frames.split(256)]))
    return groups


def build(world: str, tok, real: torch.Tensor, real_latents: torch.Tensor, others: dict[str, torch.Tensor],
          seed: int = 0) -> WorldClassifier:
    return WorldClassifier.fit(world, classes(world, tok, subsample(real), real_latents, others), seed)


def kept_fraction_real(world: str, tok, frames: list[torch.Tensor], latents: list[torch.Tensor],
                       others: dict[str, torch.Tensor], seed: int = 0) -> float | None:
    """The rule's ceiling: the fraction of real frames of held-out episodes (every 4th frame of
    the odd-numbered episodes; of an episode's second half when there is one episode) that a
    classifier fitted on the others (the even-numbered episodes; the first half) keeps."""
    if len(frames) >= 2:
        fit_f, fit_z = torch.cat(frames[0::2]), torch.cat(latents[0::2])
        test_z = torch.cat(latents[1::2])[::4]
    else:
        half = len(frames[0]) // 2
        if half < 2:
            return None
        fit_f, fit_z, test_z = frames[0][:half], latents[0][:half], latents[0][half:][::4]
    clf = build(world, tok, fit_f, fit_z, others, seed)
    return float(clf.kept(features(test_z)).float().mean())
