"""Find the visual tokens of one VLM forward and their (frames, height, width) grid.

The layout comes from the model's own inputs: the image/video placeholder ids
of the config mark the visual runs in ``input_ids``; the grid comes from

* Qwen2-VL / Qwen2.5-VL: ``image_grid_thw`` / ``video_grid_thw`` divided by
  the spatial merge size (one grid row per placeholder run, in order);
* LLaVA-OneVision: video -> (frames, ceil(P/2), ceil(P/2)) with P the SigLIP
  patch grid side (2x2 bilinear pooling); the trailing newline token of the
  run is not visual. Images -> the base image (1, P, P) followed, for anyres
  tiling, by the unpadded high-resolution grid (1, rows, cols + 1): its
  per-row newline token is kept as the last column of the raster, since it
  sits in the token stream exactly there. A single-tile image is (1, P, P)
  plus its trailing newline (not visual).

Each run gives one or more :class:`Segment`; SIC is applied per segment.
Only batch size 1 is supported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Segment", "VisualLayout", "find_layout", "llava_image_layout", "model_family"]


@dataclass(frozen=True)
class Segment:
    """``frames*height*width`` visual tokens starting at sequence position ``start``."""

    start: int
    grid: tuple[int, int, int]

    @property
    def length(self) -> int:
        return math.prod(self.grid)


@dataclass(frozen=True)
class VisualLayout:
    """Visual segments of one prompt (original sequence positions)."""

    segments: tuple[Segment, ...]
    #: First position after the last placeholder run: SEC's text query rows start here.
    text_start: int
    seq_len: int

    @property
    def num_visual(self) -> int:
        return sum(s.length for s in self.segments)

    def positions(self) -> torch.Tensor:
        """(num_visual,) original positions of the visual tokens, segment by segment."""
        return torch.cat([torch.arange(s.start, s.start + s.length) for s in self.segments])


def model_family(model) -> str:
    """'qwen' (Qwen2-VL, Qwen2.5-VL) or 'llava' (LLaVA-OneVision); ValueError otherwise."""
    kind = getattr(model.config, "model_type", None)
    if kind in ("qwen2_vl", "qwen2_5_vl"):
        return "qwen"
    if kind == "llava_onevision":
        return "llava"
    raise ValueError(f"Focus integration supports qwen2_vl, qwen2_5_vl and llava_onevision "
                     f"models; got model_type={kind!r}")


def _runs(ids: torch.Tensor, token: int) -> list[tuple[int, int]]:
    """(start, length) of every maximal run of ``token`` in the 1-D ``ids``."""
    hit = (ids == token).to(torch.int8)
    edges = torch.diff(torch.cat([hit.new_zeros(1), hit, hit.new_zeros(1)]))
    starts = (edges == 1).nonzero().flatten().tolist()
    ends = (edges == -1).nonzero().flatten().tolist()
    return [(s, e - s) for s, e in zip(starts, ends)]


def llava_image_layout(config, image_size, vision_aspect_ratio=None):
    """Grids of one anyres LLaVA-OneVision image of ``image_size`` (height, width):
    ``(base (1, P, P), high-res (1, rows, cols + 1))`` as packed by the model."""
    from transformers.models.llava_onevision.modeling_llava_onevision import (
        get_anyres_image_grid_shape, unpad_image)
    side = config.vision_config.image_size // config.vision_config.patch_size
    tiles_h, tiles_w = get_anyres_image_grid_shape(
        [int(v) for v in image_size], config.image_grid_pinpoints, config.vision_config.image_size)
    canvas = unpad_image(torch.zeros(1, tiles_h * side, tiles_w * side), image_size)
    rows, cols = canvas.shape[1:]
    aspect = vision_aspect_ratio or config.vision_aspect_ratio
    ratio = math.sqrt(rows * cols / (int(aspect.strip("anyres_max_")) * side ** 2))
    if ratio > 1.1:
        rows, cols = int(rows // ratio), int(cols // ratio)
    return (1, side, side), (1, rows, cols + 1)


def find_layout(model, inputs: dict) -> VisualLayout | None:
    """The visual layout of a forward's keyword inputs, or None when the
    input holds no visual placeholder (text-only or decode step)."""
    ids = inputs.get("input_ids")
    if ids is None:
        if inputs.get("inputs_embeds") is not None and any(
                inputs.get(k) is not None for k in ("pixel_values", "pixel_values_videos")):
            raise ValueError("Focus needs input_ids to find the visual tokens; got inputs_embeds")
        return None
    if ids.ndim != 2 or ids.shape[0] != 1:
        raise ValueError(f"Focus integration supports batch size 1; input_ids has shape "
                         f"{tuple(ids.shape)}")
    ids = ids[0].cpu()
    config = model.config
    family = model_family(model)
    segments, ends = [], []
    for kind in ("image", "video"):
        runs = _runs(ids, getattr(config, f"{kind}_token_id"))
        if not runs:
            continue
        found = (_qwen_segments if family == "qwen" else _llava_segments)(config, inputs, kind, runs)
        segments += found
        ends += [s + n for s, n in runs]
    if not segments:
        return None
    segments.sort(key=lambda s: s.start)
    return VisualLayout(tuple(segments), text_start=max(ends), seq_len=int(ids.shape[0]))


def _qwen_segments(config, inputs, kind, runs):
    grid_thw = inputs.get(f"{kind}_grid_thw")
    if grid_thw is None or len(grid_thw) != len(runs):
        raise ValueError(f"{kind}_grid_thw must have one row per {kind} placeholder run "
                         f"({len(runs)} runs), got {None if grid_thw is None else len(grid_thw)}")
    merge = config.vision_config.spatial_merge_size
    segments = []
    for (start, length), (t, h, w) in zip(runs, grid_thw.tolist()):
        grid = (int(t), int(h) // merge, int(w) // merge)
        if math.prod(grid) != length:
            raise ValueError(f"{kind} run at position {start} has {length} tokens but "
                             f"{kind}_grid_thw {[t, h, w]} / merge {merge} gives {grid}")
        segments.append(Segment(start, grid))
    return segments


def _llava_segments(config, inputs, kind, runs):
    side = config.vision_config.image_size // config.vision_config.patch_size
    segments = []
    if kind == "video":
        videos = inputs.get("pixel_values_videos")
        if videos is None or len(runs) != 1:
            raise ValueError(f"LLaVA-OneVision: expected one video run with pixel_values_videos, "
                             f"got {len(runs)} runs")
        pooled = math.ceil(side / 2)
        grid = (int(videos.shape[1]), pooled, pooled)
        (start, length), = runs
        if math.prod(grid) + 1 != length:
            raise ValueError(f"video run at position {start} has {length} tokens, expected "
                             f"frames*{pooled}*{pooled}+1 = {math.prod(grid) + 1}")
        return [Segment(start, grid)]
    sizes = inputs.get("image_sizes")
    for i, (start, length) in enumerate(runs):
        if length == side * side + 1:      # single tile: base grid + newline
            segments.append(Segment(start, (1, side, side)))
            continue
        if sizes is None or i >= len(sizes):
            raise ValueError(f"image run {i} at position {start} needs image_sizes[{i}]")
        base, hires = llava_image_layout(config, sizes[i].tolist(), inputs.get("vision_aspect_ratio"))
        if math.prod(base) + math.prod(hires) != length:
            raise ValueError(f"image run at position {start} has {length} tokens, expected "
                             f"{math.prod(base)} + {math.prod(hires)} for image_sizes "
                             f"{sizes[i].tolist()}")
        segments += [Segment(start, base), Segment(start + math.prod(base), hires)]
    return segments
