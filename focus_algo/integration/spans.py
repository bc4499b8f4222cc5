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
    raise ValueError(
        f"Focus integration supports qwen2_vl, qwen2_5_vl and llava_onevision "
        f"models; got model_type={kind!r}"
    )


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
        get_anyres_image_grid_shape,
        unpad_image,
    )

    side = config.vision_config.image_size // config.vision_config.patch_size
    tiles_h, tiles_w = get_anyres_image_grid_shape(
        [int(v) for v in image_size], config.image_grid_pinpoints, config.vision_config.image_size
    )
    canvas = unpad_image(torch.zeros(1, tiles_h * side, tiles_w * side), image_size)
    rows, cols = canvas.shape[1:]
    aspect = vision_aspect_ratio or config.vision_aspect_ratio
    ratio = math.sqrt(rows * cols / (int(aspect.removeprefix("anyres_max_")) * side**2))
    if ratio > 1.1:
        rows, cols = int(rows // ratio), int(cols // ratio)
    return (1, side, side), (1, rows, cols + 1)


def find_layout(model, inputs: dict) -> VisualLayout | None:
    """The visual layout of a forward's keyword inputs, or None when the
    input holds no visual placeholder (text-only or decode step)."""
    ids = inputs.get("input_ids")
    if ids is None:
        if inputs.get("inputs_embeds") is not None and any(
            inputs.get(k) is not None for k in ("pixel_values", "pixel_values_videos")
        ):
            raise ValueError("Focus needs input_ids to find the visual tokens; got inputs_embeds")
        return None
    if ids.ndim != 2 or ids.shape[0] != 1:
        raise ValueError(
            f"Focus integration supports batch size 1; input_ids has shape {tuple(ids.shape)}"
        )
    ids = ids[0].cpu()
    config = model.config
    family = model_family(model)
    segments, ends = [], []
    for kind in ("image", "video"):
        runs = _runs(ids, getattr(config, f"{kind}_token_id"))
        if not runs:
            continue
        found = (_qwen_segments if family == "qwen" else _llava_segments)(model, inputs, kind, runs)
        segments += found
        ends += [s + n for s, n in runs]
    if not segments:
        return None
    segments.sort(key=lambda s: s.start)
    return VisualLayout(tuple(segments), text_start=max(ends), seq_len=int(ids.shape[0]))


def _qwen_segments(model, inputs, kind, runs):
    config = model.config
    grid_thw = inputs.get(f"{kind}_grid_thw")
    merge = config.vision_config.spatial_merge_size
    if grid_thw is not None:
        if len(grid_thw) != len(runs):
            raise ValueError(
                f"{kind}_grid_thw has {len(grid_thw)} rows but the input holds "
                f"{len(runs)} {kind} placeholder runs"
            )
        grids = [(int(t), int(h) // merge, int(w) // merge) for t, h, w in grid_thw.tolist()]
    else:  # generate() passes precomputed features and the 3D rope positions instead
        pos = inputs.get("position_ids")
        if pos is None or pos.ndim != 3:
            raise ValueError(f"need {kind}_grid_thw (or 3D position_ids) to find the {kind} grid")
        grids = [
            tuple(int(pos[axis, 0, s : s + n].unique().numel()) for axis in (-3, -2, -1))
            for s, n in runs
        ]
    segments = []
    for (start, length), grid in zip(runs, grids):
        if math.prod(grid) != length:
            raise ValueError(
                f"{kind} run at position {start} has {length} tokens but its "
                f"grid is {grid} (merge {merge})"
            )
        segments.append(Segment(start, grid))
    return segments


def _llava_segments(model, inputs, kind, runs):
    config = model.config
    side = config.vision_config.image_size // config.vision_config.patch_size
    if kind == "video":
        pooled = math.ceil(side / 2)
        segments = []
        for start, length in runs:
            frames, extra = divmod(length - 1, pooled * pooled)
            if extra or frames < 1:
                raise ValueError(
                    f"video run at position {start} has {length} tokens, not "
                    f"frames*{pooled}*{pooled}+1"
                )
            segments.append(Segment(start, (frames, pooled, pooled)))
        return segments
    sizes = inputs.get("image_sizes")
    features = (inputs.get("mm_encoder_outputs") or {}).get("image")
    segments = []
    for i, (start, length) in enumerate(runs):
        base = (1, side, side)
        if length == side * side + 1:  # single tile: base grid + newline
            segments.append(Segment(start, base))
            continue
        if sizes is not None and i < len(sizes):
            _, hires = llava_image_layout(
                config, sizes[i].tolist(), inputs.get("vision_aspect_ratio")
            )
        elif features is not None:
            hires = _hires_from_newlines(
                features.pooler_output[i][side * side :], model.model.image_newline
            )
        else:
            raise ValueError(f"image run {i} at position {start} needs image_sizes[{i}]")
        if math.prod(base) + math.prod(hires) != length:
            raise ValueError(
                f"image run at position {start} has {length} tokens, expected "
                f"{math.prod(base)} + {math.prod(hires)}"
            )
        segments += [Segment(start, base), Segment(start + math.prod(base), hires)]
    return segments


def _hires_from_newlines(features, newline):
    """(1, rows, cols + 1) of packed anyres features whose rows end with ``newline``."""
    is_newline = (features == newline.to(features)).all(dim=-1).nonzero().flatten()
    if len(is_newline) == 0:
        raise ValueError("anyres image features hold no newline token; pass image_sizes")
    row = int(is_newline[0]) + 1
    rows = len(features) // row
    expected = torch.arange(row - 1, rows * row, row, device=is_newline.device)
    if rows * row != len(features) or not torch.equal(is_newline, expected):
        raise ValueError("anyres image features are not rows ending with a newline token")
    return (1, rows, row)
