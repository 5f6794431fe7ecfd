"""The Omni world model: one transformer over one token stream of text, actions, audio and video.

Shape legend:
    B batch, F frames, T text tokens, L tokens in the sequence, D width, H heads, Dh = D / H,
    C video latent channels on an h x w grid, Na audio tokens of Ca channels per frame,
    A action width (the binary/one-hot action vector), G guidance scales.

Per frame the stream holds [action token] [Na audio tokens] [h*w video tokens]; a text segment
(a prompt or the latest notification) comes first. `model/layout.py` says where each token sits
and what it may attend to (block-causal over frames, bidirectional inside a frame).

Three choices come from what a small model learned on this CPU (../shared/CALIBRATION.md):
  * Every token of a frame is conditioned on that frame's flow time t, step size d, guidance
    w and *action* through AdaLN-zero (Peebles & Xie 2023, DiT): a lone action token among
    hundreds of keys was not learned in 25 minutes; the same action in every block was.
  * Each video/audio token also gets the previous frame's clean latent at the same position
    as extra input channels: the locality a conv net gets for free.
  * The MLP of every block runs a depthwise 3x3 convolution over the frame's token grid.
Heads predict the clean latents of the noisy frames as a change from the previous frame (a copy
prior); `forward` returns the clean estimate x̂_0 for every parameterisation (OmniConfig.output).

The model knows tokens and positions; it knows nothing about datasets, flow paths or caches
beyond taking precomputed keys/values for the clean frames. Its streaming pass (frames against
the engine's cache, text and memory keys on their own) is model/streaming.py, its rotary
positions model/rope.py.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from liveworld.model.attention import MemoryRead, attend
from liveworld.model.layout import Layout
from liveworld.model.memory import MemoryInputs
from liveworld.model.rope import apply_rope, rope_axis, rope_tables
from liveworld.model.streaming import Placement, StreamingPass


@dataclass(frozen=True)
class OmniConfig:
    width: int = 256
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 3.0
    video_channels: int = 16
    audio_tokens: int = 4  # 0: a world without sound
    audio_channels: int = 16
    action_dim: int = 8
    text_vocab: int = 512
    text_len: int = 24
    guidance_dims: int = 2  # (text, action) guidance scales the distilled student takes as input
    frames: int = 6  # frames per training clip = the cache window the engine keeps
    rope_split: tuple[int, int, int] = (16, 24, 24)  # head dims rotated by frame, row, col
    conv_mlp: bool = True
    # What the heads predict; forward() always returns the clean estimate x̂_0 from it.
    #   "delta": x̂_0 = the previous frame's latent + head (a copy prior: an untrained model
    #            returns the last frame, so training starts at the copy-last baseline)
    #   "x0":    x̂_0 = head;   "velocity": x̂_0 = x_t - t * head (the first bundled world)
    output: str = "velocity"
    # How the step-size input d was trained: 0 = never (the sampler feeds d = 0), else the
    # shortcut levels 1, 1/2, ..., 1/shortcut_steps (liveworld/flow/shortcut.py).
    shortcut_steps: int = 0
    # Memory beyond the window (model/memory.py): a bank of `memory_units` units (0: none), each
    # a frame's latent grid cut into memory_patch x memory_patch patches, one candidate every
    # `memory_stride` frames, kept by `memory_rule` ("recency" | "novelty").
    memory_units: int = 0
    memory_patch: int = 2
    memory_stride: int = 1
    memory_rule: str = "recency"
    memory_top_k: int = 0  # units a frame reads per head (model/attention.py); 0: all (dense)
    # Locality (../shared/CALIBRATION.md: a conv net over stacked latents learned next frame and
    # keys in 40 minutes). `stack` K: each frame's video tokens take the K previous clean latents
    # at their own position as input channels (1: the previous frame), so a model with a window
    # of 0 frames (frames = 1) predicts a frame from its stack, the text and the memory alone and
    # trains on one frame's tokens instead of a window carried twice. `conv_stem`: the video
    # tokens are embedded by a 3x3 convolution over the grid instead of per token. `conv_blocks`:
    # residual blocks of two full 3x3 convolutions over each frame's grid, one before each of the
    # first `conv_blocks` attention blocks. `context_level`: the noise level of the stacked
    # context (training's augmentation; 0 at sampling) conditions every token through AdaLN.
    stack: int = 1
    conv_stem: bool = False
    conv_blocks: int = 0
    context_level: bool = False

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


PRESETS = {
    "tiny": OmniConfig(width=32, depth=2, heads=2, video_channels=4, audio_tokens=2, audio_channels=4,
                       text_vocab=300, text_len=4, frames=3, rope_split=(4, 6, 6), output="delta", shortcut_steps=4),
    "cpu": OmniConfig(output="delta", shortcut_steps=8),
    "gpu": OmniConfig(width=1024, depth=16, heads=16, frames=16, text_len=32, output="delta", shortcut_steps=8),
    # One frame's tokens per prediction, 4 stacked latents, convolutions inside the frame and
    # attention across the stream (text, audio, memory): 0.65 GFLOP a trained frame, 0.55 a sampled one (docs/RESULTS.md).
    "stack": OmniConfig(width=160, depth=3, heads=4, mlp_ratio=2.0, frames=1, rope_split=(8, 16, 16), conv_mlp=False,
                        output="delta", shortcut_steps=0, stack=4, conv_stem=True, conv_blocks=3, context_level=True),
    "tiny-stack": OmniConfig(width=32, depth=2, heads=2, video_channels=4, audio_tokens=2, audio_channels=4,
                             text_vocab=300, text_len=4, frames=1, rope_split=(4, 6, 6), conv_mlp=False, output="delta",
                             shortcut_steps=0, stack=3, conv_stem=True, conv_blocks=2, context_level=True),
}
OUTPUTS = ("delta", "x0", "velocity")


# ---------------------------------------------------------------------------------------------
# Embeddings


def fourier_features(x: torch.Tensor, dim: int, max_period: float = 1000.0) -> torch.Tensor:
    """Sinusoidal features of scalars in [0, 1] (t, d, w): [...] -> [..., dim] (DiT's timestep embedding)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    args = (x.float() * 1000.0)[..., None] * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], -1).to(x.dtype)


class ScalarEmbed(nn.Module):
    def __init__(self, width: int, freq_dim: int = 128):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(fourier_features(x, self.freq_dim).to(self.mlp[0].weight.dtype))


# ---------------------------------------------------------------------------------------------
# Blocks


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU, tanh approximation. Without gradients it is computed as x * sigmoid(2z) (the same
    function: 0.5 (1 + tanh z) = sigmoid(2z)), which this CPU build runs 1.5x faster at the
    engine's sizes; with gradients, torch's fused kernel (4x faster at training sizes)."""
    if x.requires_grad and torch.is_grad_enabled():
        return F.gelu(x, approximate="tanh")
    return x * torch.sigmoid(x * (1.5957691216057308 + 0.07135481627159393 * x * x))


def video_rows(video: tuple[int, int, int, tuple[int, int]], frames: int, device) -> torch.Tensor:
    """The sequence rows of the video tokens of `frames` whole frames (video = (start, N, first
    video token of a frame, grid)), frame by frame in grid order."""
    start, N, v0, (gh, gw) = video
    return (start + torch.arange(frames, device=device)[:, None] * N + v0 + torch.arange(gh * gw, device=device)[None]).flatten()


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class Block(nn.Module):
    """Pre-norm transformer block with AdaLN-zero modulation per token (from its frame's condition)."""

    def __init__(self, cfg: OmniConfig):
        super().__init__()
        D, hidden = cfg.width, int(cfg.width * cfg.mlp_ratio)
        self.heads = cfg.heads
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(D, 3 * D)
        self.q_norm = nn.RMSNorm(cfg.head_dim, eps=1e-6)  # QK-norm keeps attention logits tame in fp32 and bf16
        self.k_norm = nn.RMSNorm(cfg.head_dim, eps=1e-6)
        self.proj = nn.Linear(D, D)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.fc1 = nn.Linear(D, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden) if cfg.conv_mlp else None
        self.fc2 = nn.Linear(hidden, D)
        self.ada = nn.Linear(D, 6 * D)
        nn.init.zeros_(self.ada.weight)  # AdaLN-zero: every block starts as the identity
        nn.init.zeros_(self.ada.bias)

    def attention(self, x: torch.Tensor, rope, mask: torch.Tensor | None, kv: tuple[torch.Tensor, torch.Tensor] | None = None,
                  out_kv: list | None = None, kv_only: bool = False, read: MemoryRead | None = None, keep: int = 0,
                  place: "Placement | None" = None):
        """kv: the engine's cache of this layer, (keys, values) [B, H, Lk, Dh] whose last L rows
        are this segment's own: its rotated keys and values are written there (or where `place`
        says), then attended with the rest (no concatenation); kv_only stops there, keep > 0
        attends only from the last `keep` tokens. out_kv: a list that receives the un-rotated (k, v)."""
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        if out_kv is not None:
            out_kv.append((k, v))
            if kv_only and kv is None:
                return None
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if kv is not None:
            if place is None:
                kv[0][:, :, -L:] = k
                kv[1][:, :, -L:] = v
            else:
                place.write(kv, k, v)
            if kv_only:
                return None
            alone = place.alone if place is not None else 0
            if alone:  # leading tokens that see only each other (a memory unit): attended apart
                own = None if keep else F.scaled_dot_product_attention(q[:, :, :alone], k[:, :, :alone], v[:, :, :alone])
                q = q[:, :, alone:]
            k, v = kv
        else:
            alone = 0
        Lf = L - alone  # the rows `mask` and `read` describe
        if keep:
            q, L = q[:, :, -keep:], keep
            mask = mask[..., -keep:, :] if mask is not None else None
            if read is not None:
                skip = Lf - keep  # the query rows dropped
                read = dataclasses.replace(read, query_blocks=tuple((r - skip, n) for r, n in read.query_blocks if r >= skip))
        out = attend(q, k, v, mask, read)
        if alone and not keep:
            out = torch.cat([own, out], 2)
        return self.proj(out.transpose(1, 2).reshape(B, L, D))

    def mlp(self, x: torch.Tensor, video: tuple[int, int, int, int] | None) -> torch.Tensor:
        h = gelu_tanh(self.fc1(x))
        if self.dwconv is not None and video is not None:
            start, N, v0, (gh, gw) = video[0], video[1], video[2], video[3]
            B, L, Hd = h.shape
            frames = (L - start) // N
            grid = h[:, start:].reshape(B, frames, N, Hd)[:, :, v0:]  # [B, F, h*w, hidden]
            g = grid.reshape(B * frames, gh, gw, Hd).permute(0, 3, 1, 2)
            g = self.dwconv(g).permute(0, 2, 3, 1).reshape(B, frames * gh * gw, Hd)
            h = h.index_add(1, video_rows(video, frames, h.device), g)
        return self.fc2(h)

    def forward(self, x, mod_slots, slot, rope, mask, video, kv=None, out_kv=None, kv_only=False, read=None, keep=0, place=None):
        """x [B, L, D]; mod_slots [B, S, D] conditions per slot; slot [L] each token's slot.
        kv_only: only write this layer's keys and values into `kv` (or `out_kv`) and return
        None (the last layer of a pass that only fills the cache: a frame's, the text's, a unit's). keep > 0: write every token's keys and
        values, but return only the last `keep` tokens (the last layer of the fused pass, whose
        first frame is there only for its cache write) [B, keep, D]."""
        mods = self.ada(F.silu(mod_slots))  # [B, S, 6D]: computed per frame (slot) ...
        if mods.shape[1] > 1:  # ... gathered per token; one slot broadcasts (the engine's one-frame pass)
            mods = mods.index_select(1, slot)  # 10x faster than mods[:, slot] on CPU
        sh1, sc1, g1, sh2, sc2, g2 = mods.chunk(6, -1)
        att = self.attention(modulate(self.norm1(x), sh1, sc1), rope, mask, kv, out_kv, kv_only, read, keep, place)
        if kv_only:
            return None
        if keep:
            x = x[:, -keep:]
            if video is not None:  # what is kept is whole frames: the grid starts at its first token
                video = (0,) + tuple(video[1:])
            if mods.shape[1] > 1:
                g1, sh2, sc2, g2 = (m[:, -keep:] for m in (g1, sh2, sc2, g2))
        x = x + g1 * att
        x = x + g2 * self.mlp(modulate(self.norm2(x), sh2, sc2), video)
        return x


class ConvBlock(nn.Module):
    """A residual block of two full 3x3 convolutions over each frame's grid of video tokens,
    modulated by the frame's condition (AdaLN-zero: it starts as the identity). The other tokens
    (text, action, audio, memory) pass through unchanged: locality inside a frame, where a conv
    net learns fastest, and attention across the stream."""

    def __init__(self, cfg: OmniConfig):
        super().__init__()
        D = cfg.width
        self.norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.conv1 = nn.Conv2d(D, D, 3, padding=1)
        self.conv2 = nn.Conv2d(D, D, 3, padding=1)
        self.ada = nn.Linear(D, 3 * D)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, mod_slots: torch.Tensor, slot: torch.Tensor,
                video: tuple[int, int, int, tuple[int, int]] | None) -> torch.Tensor:
        """x [B, L, D] whose rows from `start` on are whole frames of N tokens (video = (start, N,
        first video token of a frame, grid)); None: no frame in this pass (text, a memory unit)."""
        if video is None:
            return x
        start, N, v0, (gh, gw) = video
        B, L, D = x.shape
        frames = (L - start) // N
        if frames == 0:
            return x
        mods = self.ada(F.silu(mod_slots))  # [B, S, 3D]
        if mods.shape[1] > 1:  # the condition of each frame: the slot of its first video token
            mods = mods.index_select(1, slot[start + v0::N][:frames])
        else:
            mods = mods.expand(B, frames, -1)
        shift, scale, gate = mods[:, :, None].chunk(3, -1)  # [B, F, 1, D]
        grid = x[:, start:].reshape(B, frames, N, D)[:, :, v0:]  # [B, F, h*w, D]
        h = modulate(self.norm(grid), shift, scale).reshape(B * frames, gh, gw, D).permute(0, 3, 1, 2)
        h = self.conv2(F.gelu(self.conv1(h), approximate="tanh"))
        h = h.permute(0, 2, 3, 1).reshape(B, frames, gh * gw, D) * gate
        return x.index_add(1, video_rows(video, frames, x.device), h.reshape(B, frames * gh * gw, D))


# ---------------------------------------------------------------------------------------------
# The model


@dataclass
class FrameInputs:
    """One segment of frames (clean or noisy), all tensors batch-first.

    video [B, F, C, h, w], video_prev [B, F, K*C, h, w] (the K previous frames' clean latents,
    oldest first: model/sampling.stack_frames), audio [B, F, Na, Ca], audio_prev [B, F, Na, Ca]
    (the previous frame's), action [B, F, A], action_drop [B, F] bool, t [B, F], d [B, F],
    context_t [B, F] the noise level of the stacked context (None: clean, 0, as sampling feeds).
    Audio fields are None for a world without sound.
    """

    video: torch.Tensor
    video_prev: torch.Tensor
    action: torch.Tensor
    t: torch.Tensor
    d: torch.Tensor
    action_drop: torch.Tensor | None = None
    audio: torch.Tensor | None = None
    audio_prev: torch.Tensor | None = None
    context_t: torch.Tensor | None = None

    @property
    def frames(self) -> int:
        return self.video.shape[1]

    def last(self) -> "FrameInputs":
        """The segment's last frame alone."""
        return self.select_frames(slice(-1, None))

    def select_frames(self, frames: slice) -> "FrameInputs":
        """The segment's frames `frames` (a slice along dim 1)."""
        return FrameInputs(**{f.name: (v[:, frames] if v is not None else None) for f in dataclasses.fields(self)
                              for v in (getattr(self, f.name),)})

    def select(self, idx: torch.Tensor) -> "FrameInputs":
        """The same segment for the batch rows idx."""
        return FrameInputs(**{f.name: (v[idx] if v is not None else None) for f in dataclasses.fields(self)
                              for v in (getattr(self, f.name),)})


class OmniWorldModel(StreamingPass, nn.Module):
    def __init__(self, cfg: OmniConfig):
        super().__init__()
        if cfg.output not in OUTPUTS:
            raise ValueError(f"OmniConfig.output must be one of {OUTPUTS}, got {cfg.output!r}")
        self.cfg = cfg
        D = cfg.width
        if cfg.stack < 1:
            raise ValueError(f"OmniConfig.stack must be >= 1, got {cfg.stack}")
        if cfg.conv_blocks > cfg.depth:
            raise ValueError(f"OmniConfig.conv_blocks ({cfg.conv_blocks}) can be at most depth ({cfg.depth})")
        video_in = (1 + cfg.stack) * cfg.video_channels
        self.video_in = nn.Conv2d(video_in, D, 3, padding=1) if cfg.conv_stem else nn.Linear(video_in, D)
        self.audio_in = nn.Linear(2 * cfg.audio_channels, D) if cfg.audio_tokens else None
        self.action_in = nn.Linear(cfg.action_dim, D)
        self.null_action = nn.Parameter(torch.zeros(D))  # "no action given": condition dropout, CFG
        self.text_in = nn.Embedding(cfg.text_vocab, D)
        self.kind_embed = nn.Parameter(torch.zeros(4, D))  # text, action, audio, video token types
        self.t_embed = ScalarEmbed(D)
        self.d_embed = ScalarEmbed(D)
        self.context_embed = ScalarEmbed(D) if cfg.context_level else None
        self.w_embed = nn.Linear(cfg.guidance_dims, D)
        self.cond_action = nn.Linear(cfg.action_dim, D)
        if cfg.memory_units:
            self.memory_in = nn.Linear(cfg.video_channels * cfg.memory_patch ** 2, D)
            self.memory_kind = nn.Parameter(torch.randn(D) * 0.02)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        self.convs = nn.ModuleList([ConvBlock(cfg) for _ in range(cfg.conv_blocks)])
        self.norm_out = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Linear(D, 2 * D)
        self.video_out = nn.Linear(D, cfg.video_channels)
        self.audio_out = nn.Linear(D, cfg.audio_channels) if cfg.audio_tokens else None
        for m in (self.ada_out, self.video_out) + ((self.audio_out,) if self.audio_out is not None else ()):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        nn.init.normal_(self.kind_embed, std=0.02)
        self._frame_tables: dict = {}  # the engine's one-frame layouts, by grid (not state)
        self.read_top_k = cfg.memory_top_k  # sparse memory reads; benchmarks and evaluation may change it

    # -- inputs -----------------------------------------------------------------------------
    def _frame_tokens(self, seg: FrameInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """-> tokens [B, F*N, D], conditions [B, F, D]."""
        cfg = self.cfg
        B, Fr, C, h, w = seg.video.shape
        v = torch.cat([seg.video, seg.video_prev], 2)  # [B, F, (1 + K) C, h, w]
        if cfg.conv_stem:
            v = self.video_in(v.flatten(0, 1)).reshape(B, Fr, cfg.width, h * w).transpose(2, 3)
        else:
            v = self.video_in(v.permute(0, 1, 3, 4, 2).reshape(B, Fr, h * w, v.shape[2]))
        v = v + self.kind_embed[3]
        act = self.action_in(seg.action)
        drop = seg.action_drop
        if drop is not None:
            act = torch.where(drop[..., None], self.null_action.to(act.dtype), act)
        parts = [(act + self.kind_embed[1])[:, :, None]]
        if cfg.audio_tokens:
            a = torch.cat([seg.audio, seg.audio_prev], -1)
            parts.append(self.audio_in(a) + self.kind_embed[2])
        parts.append(v)
        tokens = torch.cat(parts, 2).reshape(B, -1, cfg.width)
        cond_act = self.cond_action(seg.action)
        if drop is not None:
            cond_act = cond_act * (~drop[..., None]).to(cond_act.dtype)
        cond = self.t_embed(seg.t) + self.d_embed(seg.d) + cond_act
        if self.context_embed is not None:
            cond = cond + self.context_embed(seg.context_t if seg.context_t is not None else torch.zeros_like(seg.t))
        return tokens, cond

    def embed(self, text: torch.Tensor | None, segments: list[FrameInputs], guidance: torch.Tensor | None,
              memory: MemoryInputs | None = None):
        """-> tokens [B, L, D] in the layout's order and conditions [B, S, D] by slot: the text's,
        each frame's, then (with memory) the memory's: flow time 0, no action."""
        B = segments[0].video.shape[0]
        toks, conds = [], []
        w_emb = self.guidance_embed(guidance, B, segments[0].video.device).expand(B, -1)  # one w for a batch of streams too
        if memory is not None:
            toks.append(self.memory_in(memory.tokens.flatten(1, 2).to(w_emb.dtype)) + self.memory_kind)
        if text is not None:
            toks.append(self.text_in(text) + self.kind_embed[0])
        conds.append(w_emb[:, None])  # slot 0: the text segment
        for seg in segments:
            tk, cd = self._frame_tokens(seg)
            toks.append(tk)
            conds.append(cd + w_emb[:, None])
        if memory is not None:
            zero = torch.zeros(B, 1, device=w_emb.device, dtype=w_emb.dtype)
            conds.append((self.t_embed(zero) + self.d_embed(zero) + w_emb[:, None]))
        return torch.cat(toks, 1), torch.cat(conds, 1)

    def guidance_embed(self, guidance: torch.Tensor | None, B: int, device) -> torch.Tensor:
        """w [B, G] guidance scales (flow/guidance.py's order) -> [B, D]. The model sees w - 1, so
        no guidance (w = 1, or None) is the zero input every model was trained with first."""
        dtype = self.video_in.weight.dtype
        if guidance is None:
            return self.w_embed.bias.to(dtype)[None].expand(B, -1)
        return self.w_embed((guidance - 1).to(device=device, dtype=dtype))

    def layout(self, text_len: int, grid: tuple[int, int], clean: int, noisy: int, noisy_offset: int = 0,
               memory_units: int = 0) -> Layout:
        """Without clean frames the noisy ones are predicted apart, at one frame number (layout.py)."""
        return Layout(text_len, self.cfg.audio_tokens, grid, clean, noisy, noisy_offset, memory_units, self.cfg.memory_patch,
                      apart=clean == 0)

    # -- forward ------------------------------------------------------------------------------
    def forward(self, text: torch.Tensor, clean: FrameInputs, noisy: FrameInputs,
                guidance: torch.Tensor | None = None, text_valid: torch.Tensor | None = None,
                noisy_offset: int = 0, memory: MemoryInputs | None = None):
        """Full-context pass: every noisy frame f is predicted from the memory, the text and the
        clean frames before it. Training passes the same frames twice (noisy_offset 0); sampling
        the frame after a context of W clean frames passes noisy_offset = W. text [B, T] token
        ids (text_valid [B, T] marks non-padding); memory (model/memory.py) or None: no memory.
        Returns the clean estimates (video x̂_0 [B, Fn, C, h, w], audio x̂_0 [B, Fn, Na, Ca] or None)."""
        grid = tuple(clean.video.shape[-2:])
        U = memory.units if memory is not None else 0
        lay = self.layout(text.shape[1], grid, clean.frames, noisy.frames, noisy_offset, U)
        x, cond = self.embed(text, [clean, noisy], guidance, memory)
        B, dev = x.shape[0], x.device
        tab = lay.token_table(dev)
        mask = lay.attention_mask(dev)
        keys_ok = []  # empty memory slots and padded text are invisible (a query always sees itself)
        if memory is not None:
            keys_ok.append(memory.valid.to(dev).repeat_interleave(lay.unit_tokens, 1))
        keys_ok.append(text_valid.to(dev) if text_valid is not None else torch.ones(B, lay.text_len, dtype=torch.bool, device=dev))
        if memory is not None or text_valid is not None:
            keys_ok.append(torch.ones(B, lay.length - lay.frames_start, dtype=torch.bool, device=dev))
            keys_ok = torch.cat(keys_ok, 1)
            mask = ((mask[None] & keys_ok[:, None, :]) | torch.eye(lay.length, dtype=torch.bool, device=dev)[None])[:, None]
        rope = rope_tables(tab, self.cfg.rope_split)
        if memory is not None:
            rope = self._memory_rope(rope, tab, memory, lay)
        video = (lay.frames_start, lay.tokens_per_frame, lay.video_offset, grid)
        read = None
        if memory is not None:
            N, first = lay.tokens_per_frame, lay.frames_start + clean.frames * lay.tokens_per_frame
            read = MemoryRead(0, U, lay.unit_tokens, tuple((first + f * N, N) for f in range(noisy.frames)), self.read_top_k)
        for i, blk in enumerate(self.blocks):
            if i < len(self.convs):
                x = self.convs[i](x, cond, tab["slot"], video)
            x = blk(x, cond, tab["slot"], rope, mask, video, read=read)
        return self._clean_estimate(noisy, *self._heads(x, cond, tab, lay, noisy.frames))

    def _memory_rope(self, rope, tab, memory: MemoryInputs, lay: Layout):
        """The RoPE tables [B, 1, L, Dh/2] with each stream's memory tokens rotated at their unit's
        frame number (the layout's table has no per-stream frames)."""
        cos, sin = rope
        n = lay.memory_len
        fa = rope_axis(memory.frame.to(cos.device).repeat_interleave(lay.unit_tokens, 1).flatten(), self.cfg.rope_split[0])
        fa = fa.view(memory.frame.shape[0], n, -1)  # [B, U*m, f/2]
        half = fa.shape[-1]
        B = fa.shape[0]
        cos = cos.expand(B, -1, -1).clone()
        sin = sin.expand(B, -1, -1).clone()
        cos[:, :n, :half], sin[:, :n, :half] = fa.cos().to(cos.dtype), fa.sin().to(sin.dtype)
        return cos[:, None], sin[:, None]

    def _clean_estimate(self, seg: FrameInputs, v: torch.Tensor, a: torch.Tensor | None):
        """Head outputs -> clean estimates x̂_0, by the configured parameterisation."""
        out = self.cfg.output
        if out == "delta":  # the newest stacked frame is the copy prior
            return seg.video_prev[:, :, -v.shape[2]:] + v, (seg.audio_prev + a if a is not None else None)
        if out == "velocity":
            t = seg.t.to(v.dtype)
            v = seg.video - t[..., None, None, None] * v
            a = seg.audio - t[..., None, None] * a if a is not None else None
        return v, a

    def _heads(self, x, cond, tab, lay: Layout, n_noisy: int):
        B = x.shape[0]
        N, h, w = lay.tokens_per_frame, *lay.grid
        start = lay.length - n_noisy * N
        shift, scale = self.ada_out(F.silu(cond)).chunk(2, -1)
        if cond.shape[1] > 1:
            shift, scale = shift.index_select(1, tab["slot"][start:]), scale.index_select(1, tab["slot"][start:])
        y = modulate(self.norm_out(x[:, start:]), shift, scale)
        y = y.reshape(B, n_noisy, N, -1)
        v = self.video_out(y[:, :, lay.video_offset:]).reshape(B, n_noisy, h, w, -1).permute(0, 1, 4, 2, 3)
        a = self.audio_out(y[:, :, 1:lay.video_offset]) if self.audio_out is not None else None
        return v, a
