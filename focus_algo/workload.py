"""A built-in, download-free video workload for SIC.

Frames come from the photographs scikit-image ships (astronaut, coffee,
chelsea, rocket, ...): each clip of ``clip_len`` frames looks at one photo
with its own camera motion -- still, pan, zoom, or pan plus zoom, all with
sub-pixel steps -- plus a textured disk moving across it and a little sensor
noise; consecutive clips are separated by scene cuts (a new photo).

With ``source`` (``focus run --video``, ``focus flow --video``) the frames
are instead those of a video file or frame folder (:func:`focus_algo.media.read_video`),
uniformly sampled to ``frames`` and each resized to the grid's pixels.

Frames are cut into ``patch`` x ``patch`` pixel patches on a (frames, height,
width) grid (default like LLaVA-Video: 14-pixel patches, 13 x 14 per frame,
but 16 frames) and turned into visual tokens by a fixed, seeded stand-in for
a vision tower: a random linear patch embedding plus position embedding and a
GELU projector. A few decoder-layer-shaped random blocks (RMSNorm, attention
within each frame, a gated MLP whose random projections go through ``rank``
dimensions, so that wide configurations stay cheap) then give,
per layer, the inputs of every GEMM site of :data:`focus_algo.trace.SITES`:

============  ======  ====================================================
site          width   what it is
============  ======  ====================================================
q_proj        hidden  RMSNorm of the residual stream (also k/v input)
query         hidden  the attention query (all heads concatenated)
o_proj        hidden  the attention output
gate_proj     hidden  RMSNorm before the MLP (also up_proj input)
down_proj     ffn     silu(gate) * up
============  ======  ====================================================

The decoder shape is the project's one workload type,
:class:`sim.workload.Workload` (re-exported here); :func:`video_workload`
builds it from widths. Defaults are Qwen2-0.5B-like widths (896 / 4864, 14
heads, GQA 7); Qwen2-7B is ``hidden=3584, ffn=18944, heads=28``. Layers are
computed one at a time when iterating, so only one layer's inputs are in memory.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from focus_hw.formats import NUMBER_FORMATS
from sim.workload import Workload, WorkloadError

__all__ = ["Clip", "VideoWorkload", "Workload", "video_workload", "IMAGES", "MOTIONS"]

#: scikit-image photographs used as scenes (grayscale ones become RGB).
IMAGES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "camera",
    "coins",
    "grass",
)
#: Camera motions, cycled through the clips (the first clip is still).
MOTIONS = ("static", "pan", "zoom", "pan_zoom")


@dataclass(frozen=True)
class Clip:
    """Frames ``start .. start+length-1`` show ``image`` with camera ``motion``."""

    start: int
    length: int
    image: str
    motion: str


@functools.lru_cache(maxsize=len(IMAGES))
def _photo(name: str) -> np.ndarray:
    """The photo as float32 RGB in [0, 1] (cached: callers must not modify it)."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return (img[..., :3] / 255.0).astype(np.float32)


@functools.lru_cache(maxsize=2)
def _file_video(path: str, frames: int, height: int, width: int) -> np.ndarray:
    """``frames`` uniformly sampled frames of a video, each resized to
    ``height`` x ``width``, as float32 RGB in [0, 1] (cached: callers must not
    modify it)."""
    from PIL import Image

    from .media import read_video

    video = read_video(path, frames)
    if len(video) < frames:
        raise WorkloadError(f"Workload.frames={frames}: video {path} has only {len(video)} frames")
    size = (width, height)
    resized = [Image.fromarray(f).resize(size, Image.Resampling.BILINEAR) for f in video]
    return np.stack([np.asarray(im) for im in resized]).astype(np.float32) / 255


def _rms_norm(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + 1e-6)


def _positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise WorkloadError(f"{name}={value!r}: must be an integer >= 1")


@dataclass(frozen=True)
class VideoWorkload:
    """The deterministic video on a decoder ``shape``; iterate it for
    per-layer GEMM inputs (build one with :func:`video_workload`).

    ``for layer, inputs in workload`` yields ``inputs = {site: (T, width)}``
    tensors in ``dtype`` (a float format of :mod:`focus_hw.formats`), with
    ``T = shape.tokens``, widths ``shape.site_widths``. The shape's grid must
    hold its tokens and its heads must span ``hidden``. ``source``: a video
    file or frame folder to take the frames from instead of the built-in scenes.
    """

    shape: Workload
    seed: int = 0
    patch: int = 14
    clip_len: int = 4
    rank: int = 128
    noise: float = 0.01
    dtype: str = "fp16"
    source: str | None = None

    def __post_init__(self):
        s = self.shape
        if not isinstance(s, Workload):
            raise WorkloadError(f"VideoWorkload.shape must be a Workload, not {type(s).__name__}")
        for name in ("patch", "clip_len", "rank"):
            _positive(f"VideoWorkload.{name}", getattr(self, name))
        if not isinstance(self.seed, int) or self.seed < 0:
            raise WorkloadError(f"VideoWorkload.seed={self.seed!r}: must be an integer >= 0")
        if not isinstance(self.noise, (int, float)) or not 0 <= self.noise < 1:
            raise WorkloadError(f"VideoWorkload.noise={self.noise!r}: must lie in [0, 1)")
        floats = sorted(n for n, f in NUMBER_FORMATS.items() if f.is_float)
        if self.dtype not in floats:
            raise WorkloadError(f"VideoWorkload.dtype={self.dtype!r}: must be one of {floats}")
        if s.tokens != math.prod(s.grid):
            raise WorkloadError(
                f"Workload.tokens={s.tokens}: the video needs "
                f"frames x height x width = {math.prod(s.grid)} tokens"
            )
        if s.heads * s.head_dim != s.hidden:
            raise WorkloadError(
                f"Workload.heads={s.heads}: heads x head_dim = "
                f"{s.heads * s.head_dim} must equal hidden={s.hidden}"
            )

    # -- video ------------------------------------------------------------------
    @property
    def clips(self) -> list[Clip]:
        """The clips (scenes) of the built-in video, in order (none for a ``source``)."""
        if self.source is not None:
            return []
        rng = np.random.default_rng([self.seed, 0])
        order = rng.permutation(len(IMAGES))
        return [
            Clip(
                start,
                min(self.clip_len, self.shape.frames - start),
                IMAGES[order[k % len(IMAGES)]],
                MOTIONS[k % len(MOTIONS)],
            )
            for k, start in enumerate(range(0, self.shape.frames, self.clip_len))
        ]

    def video(self) -> np.ndarray:
        """Frames as (frames, height*patch, width*patch, 3) float32 in [0, 1]."""
        f, h, w = self.shape.grid
        if self.source is not None:
            return _file_video(str(self.source), f, h * self.patch, w * self.patch)
        out = np.empty((f, h * self.patch, w * self.patch, 3), np.float32)
        for k, clip in enumerate(self.clips):
            out[clip.start : clip.start + clip.length] = self._render(clip, k)
        return out

    def _render(self, clip: Clip, index: int) -> np.ndarray:
        from skimage.transform import AffineTransform, warp

        rng = np.random.default_rng([self.seed, 1, index])
        img = _photo(clip.image)
        oh, ow = self.shape.height * self.patch, self.shape.width * self.patch
        fit = min(img.shape[0] / oh, img.shape[1] / ow)
        scale = rng.uniform(0.45, 0.8) * fit  # source pixels per frame pixel
        cy = rng.uniform(0.4, 0.6) * img.shape[0]
        cx = rng.uniform(0.4, 0.6) * img.shape[1]
        angle = rng.uniform(0, 2 * math.pi)
        speed = rng.uniform(0.6, 2.5) if "pan" in clip.motion else 0.0  # frame px / frame
        zoom = rng.choice([0.97, 0.98, 1.02, 1.03]) if "zoom" in clip.motion else 1.0

        # a textured disk from another photo, moving a few pixels per frame
        other = _photo(IMAGES[(IMAGES.index(clip.image) + 3) % len(IMAGES)])
        radius = 1.5 * self.patch
        sy, sx = rng.uniform(0.2, 0.8, size=2) * (np.array(other.shape[:2]) - 2 * radius)
        pos = rng.uniform(0.2, 0.8, size=2) * (oh, ow)
        vel = rng.uniform(-4, 4, size=2)
        yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32)

        frames = []
        for i in range(clip.length):
            s = scale * zoom**i
            y0 = cy + speed * i * scale * math.sin(angle)
            x0 = cx + speed * i * scale * math.cos(angle)
            cam = AffineTransform(
                matrix=np.array([[s, 0, x0 - s * ow / 2], [0, s, y0 - s * oh / 2], [0, 0, 1]])
            )
            frame = warp(img, cam, output_shape=(oh, ow), order=1, mode="reflect")
            py, px = pos + vel * i
            shift = AffineTransform(translation=(sx - px + radius, sy - py + radius))
            disk = warp(other, shift, output_shape=(oh, ow), order=1, mode="reflect")
            alpha = np.clip(radius - np.hypot(yy - py, xx - px), 0, 1)[..., None]
            frame = frame * (1 - alpha) + disk * alpha
            frame += rng.normal(0, self.noise, frame.shape)
            frames.append(np.clip(frame, 0, 1))
        return np.stack(frames)

    # -- tokens -----------------------------------------------------------------
    def _gen(self, stage: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + stage)

    @staticmethod
    def _randn(g, rows, cols) -> torch.Tensor:
        return torch.randn(rows, cols, generator=g) / math.sqrt(rows)

    def embed(self) -> torch.Tensor:
        """Visual tokens (T, hidden) fp32 entering the first decoder layer."""
        p, (f, h, w) = self.patch, self.shape.grid
        pix = torch.from_numpy(self.video())
        patches = (
            pix.view(f, h, p, w, p, 3).permute(0, 1, 3, 2, 4, 5).reshape(f * h * w, p * p * 3) - 0.5
        ) / 0.25
        g = self._gen(0)
        we = self._randn(g, p * p * 3, self.shape.hidden)
        pos = 0.5 * torch.randn(h * w, self.shape.hidden, generator=g)
        x = patches @ we + pos.repeat(f, 1)
        d = self.shape.hidden
        x = F.gelu(x @ self._randn(g, d, d)) @ self._randn(g, d, d)
        return _rms_norm(x)

    def __iter__(self) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
        out = NUMBER_FORMATS[self.dtype].torch_dtype
        h = self.embed()
        for layer in range(self.shape.layers):
            inputs, h = self._layer(h, layer)
            yield layer, {site: x.to(out) for site, x in inputs.items()}

    def _layer(self, h: torch.Tensor, layer: int):
        g = self._gen(layer + 1)
        d, r = self.shape.hidden, self.rank
        f, hw = self.shape.frames, self.shape.height * self.shape.width
        xa = _rms_norm(h)
        q = xa @ self._randn(g, d, d)
        v = xa @ self._randn(g, d, d)

        def heads(t):  # (T, d) -> (frames, heads, hw, head_dim)
            return t.view(f, hw, self.shape.heads, d // self.shape.heads).transpose(1, 2)

        # Keys share the query projection: each token attends mostly to itself
        # and to tokens like it (a peaky, content-based pattern), per frame.
        attn = F.scaled_dot_product_attention(heads(q), heads(q), heads(v))
        o_in = attn.transpose(1, 2).reshape(f * hw, d)
        h = h + o_in @ self._randn(g, d, d)

        xm = _rms_norm(h)
        z = xm @ self._randn(g, d, 2 * r)
        down_in = F.silu(z[:, :r] @ self._randn(g, r, self.shape.ffn))
        down_in *= z[:, r:] @ self._randn(g, r, self.shape.ffn)
        # The MLP output is taken from its low-rank core (cheaper than ffn -> d).
        h = h + (F.silu(z[:, :r]) * z[:, r:]) @ self._randn(g, r, d)
        inputs = {"q_proj": xa, "query": q, "o_proj": o_in, "gate_proj": xm, "down_proj": down_in}
        return inputs, h


def video_workload(
    frames: int = 16,
    height: int = 13,
    width: int = 14,
    hidden: int = 896,
    ffn: int = 4864,
    layers: int = 4,
    heads: int = 14,
    kv_groups: int = 7,
    seed: int = 0,
    video: str | None = None,
    **options,
) -> VideoWorkload:
    """The built-in video, or the file or frame folder ``video``, on a decoder
    of these widths, ``kv_groups`` query heads per KV head (other options: see
    :class:`VideoWorkload`). A ``video`` is read here, so a bad one fails
    before any work."""
    for name, value in (("hidden", hidden), ("heads", heads), ("kv_groups", kv_groups)):
        _positive(f"Workload.{name}", value)
    if hidden % heads:
        raise WorkloadError(f"Workload.heads={heads}: must divide hidden={hidden}")
    if heads % kv_groups:
        raise WorkloadError(f"Workload.kv_groups={kv_groups}: must divide heads={heads}")
    for name, value in (("frames", frames), ("height", height), ("width", width)):
        _positive(f"Workload.{name}", value)
    shape = Workload(
        name="built-in video" if video is None else Path(video).name,
        hidden=hidden,
        heads=heads,
        kv_heads=heads // kv_groups,
        head_dim=hidden // heads,
        ffn=ffn,
        layers=layers,
        tokens=frames * height * width,
        frames=frames,
        height=height,
        width=width,
    )
    workload = VideoWorkload(
        shape, seed=seed, source=None if video is None else str(video), **options
    )
    if video is not None:
        workload.video()
    return workload
