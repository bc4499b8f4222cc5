"""Tiny random-weight VLMs built offline from configs (no hub, no processor).

Each builder returns ``(model, make_inputs)``; ``make_inputs(kind, ...)``
returns the keyword arguments of one forward pass (batch 1) for
``kind="image"`` or ``kind="video"``: a few text tokens, the visual
placeholder run of the right length, then a text prompt. Pixel values are
random unless given (``pixels``), so callers can feed structured video.

Used by ``tests/test_integration.py``, ``benchmarks/bench_integration.py``
and the evaluation helpers.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "tiny_qwen2vl",
    "tiny_qwen2_5_vl",
    "tiny_llava_onevision",
    "qwen_video_pixels",
    "TEXT_VOCAB",
]

#: Ordinary text tokens are drawn from [0, TEXT_VOCAB); special ids lie above.
TEXT_VOCAB = 100
_IMAGE, _VIDEO, _START, _END = 100, 101, 102, 103
_VOCAB = 128


def _text_config(**extra):
    return dict(
        vocab_size=_VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rms_norm_eps=1e-6,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
        **extra,
    )


def _prompt(generator, n):
    return torch.randint(0, TEXT_VOCAB, (n,), generator=generator)


def _qwen_builder(model_cls, config_cls, vision_extra, seed, attn_implementation):
    torch.manual_seed(seed)
    text = _text_config(
        rope_parameters=dict(rope_type="default", rope_theta=10000.0, mrope_section=[2, 3, 3])
    )
    vision = dict(
        depth=1,
        embed_dim=32,
        hidden_size=64,
        num_heads=2,
        patch_size=2,
        temporal_patch_size=2,
        spatial_merge_size=2,
        in_channels=3,
        **vision_extra,
    )
    config = config_cls(
        text_config=text,
        vision_config=vision,
        image_token_id=_IMAGE,
        video_token_id=_VIDEO,
        vision_start_token_id=_START,
        vision_end_token_id=_END,
        attn_implementation=attn_implementation,
    )
    model = model_cls(config).eval()
    vc = model.config.vision_config
    merge = vc.spatial_merge_size
    patch_dim = vc.in_channels * vc.temporal_patch_size * vc.patch_size**2

    def make_inputs(
        kind="video", *, frames=4, height=8, width=8, prefix=3, prompt=6, seed=0, pixels=None
    ):
        """``frames`` counts temporal patches (2 video frames each); ``height``
        and ``width`` count patches before the 2x2 merge."""
        g = torch.Generator().manual_seed(seed)
        t = 1 if kind == "image" else frames
        n_vis = t * (height // merge) * (width // merge)
        n_patches = t * height * width
        if pixels is None:
            pixels = torch.randn(n_patches, patch_dim, generator=g)
        if pixels.shape != (n_patches, patch_dim):
            raise ValueError(f"pixels must be {(n_patches, patch_dim)}, got {tuple(pixels.shape)}")
        token = _IMAGE if kind == "image" else _VIDEO
        ids = torch.cat(
            [
                _prompt(g, prefix),
                torch.tensor([_START]),
                torch.full((n_vis,), token),
                torch.tensor([_END]),
                _prompt(g, prompt),
            ]
        )
        types = torch.zeros_like(ids, dtype=torch.int32)
        types[ids == token] = 1 if kind == "image" else 2
        grid = torch.tensor([[t, height, width]])
        out = dict(
            input_ids=ids[None],
            attention_mask=torch.ones_like(ids)[None],
            mm_token_type_ids=types[None],
        )
        if kind == "image":
            out.update(pixel_values=pixels, image_grid_thw=grid)
        elif kind == "video":
            out.update(pixel_values_videos=pixels, video_grid_thw=grid)
        else:
            raise ValueError(f"kind must be 'image' or 'video', got {kind!r}")
        return out

    return model, make_inputs


def tiny_qwen2vl(seed: int = 0, attn_implementation: str = "sdpa"):
    """A 4-layer Qwen2-VL (hidden 64, 4 heads, 2 KV heads) with a 1-block vision tower."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    return _qwen_builder(
        Qwen2VLForConditionalGeneration, Qwen2VLConfig, dict(mlp_ratio=2), seed, attn_implementation
    )


def tiny_qwen2_5_vl(seed: int = 0, attn_implementation: str = "sdpa"):
    """A 4-layer Qwen2.5-VL (hidden 64) with a 1-block windowed vision tower."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    return _qwen_builder(
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLConfig,
        dict(intermediate_size=64, out_hidden_size=64, window_size=8, fullatt_block_indexes=[0]),
        seed,
        attn_implementation,
    )


def tiny_llava_onevision(seed: int = 0, attn_implementation: str = "sdpa"):
    """A 4-layer LLaVA-OneVision (Qwen2 LM, hidden 64) with a 1-layer SigLIP tower
    on 16x16 images of 4x4 patches (4x4 patch grid, pooled to 2x2 per video frame)."""
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    torch.manual_seed(seed)
    vision = dict(
        model_type="siglip_vision_model",
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=16,
        patch_size=4,
    )
    text = dict(model_type="qwen2", **_text_config())
    config = LlavaOnevisionConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=_IMAGE,
        video_token_id=_VIDEO,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
        image_grid_pinpoints=[[16, 16], [16, 32], [32, 16], [32, 32]],
        attn_implementation=attn_implementation,
    )
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    side = config.vision_config.image_size // config.vision_config.patch_size

    def make_inputs(
        kind="video", *, frames=4, prefix=3, prompt=6, seed=0, pixels=None, image_size=(16, 16)
    ):
        """Video: ``frames`` frames of 16x16 pixels -> frames*2*2 tokens + 1 newline.
        Image: one ``image_size`` image (anyres tiling when larger than 16x16)."""
        from transformers.models.llava_onevision.modeling_llava_onevision import (
            image_size_to_num_patches,
        )

        g = torch.Generator().manual_seed(seed)
        size = config.vision_config.image_size
        if kind == "video":
            shape = (1, frames, 3, size, size)
            pooled = math.ceil(side / 2)
            n_vis = frames * pooled * pooled + 1
            token = _VIDEO
        elif kind == "image":
            tiles = image_size_to_num_patches(image_size, config.image_grid_pinpoints, size)
            shape = (1, tiles, 3, size, size)
            n_vis = _llava_image_tokens(model, image_size)
            token = _IMAGE
        else:
            raise ValueError(f"kind must be 'image' or 'video', got {kind!r}")
        if pixels is None:
            pixels = torch.randn(*shape, generator=g)
        if tuple(pixels.shape) != shape:
            raise ValueError(f"pixels must be {shape}, got {tuple(pixels.shape)}")
        ids = torch.cat([_prompt(g, prefix), torch.full((n_vis,), token), _prompt(g, prompt)])
        out = dict(input_ids=ids[None], attention_mask=torch.ones_like(ids)[None])
        if kind == "video":
            out.update(pixel_values_videos=pixels)
        else:
            out.update(pixel_values=pixels, image_sizes=torch.tensor([list(image_size)]))
        return out

    return model, make_inputs


def _llava_image_tokens(model, image_size) -> int:
    """Placeholder count of one LLaVA-OneVision image (what the processor computes)."""
    from focus_algo.integration.spans import llava_image_layout

    base, hires = llava_image_layout(model.config, image_size)
    return math.prod(base) + (math.prod(hires) if hires else 1)


def qwen_video_pixels(video, model) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Qwen2-VL ``pixel_values_videos`` of a (frames, H, W, 3) video in [0, 1]
    and the ``(t, h, w)`` patch grid (for ``make_inputs(frames=t, height=h, width=w)``).

    Patches are ordered as the model expects: temporal patch, then 2x2 merge
    windows in raster order, then the patches inside a window.
    """
    vc = model.config.vision_config
    p, tp, m = vc.patch_size, vc.temporal_patch_size, vc.spatial_merge_size
    x = torch.as_tensor(video, dtype=torch.float32).permute(0, 3, 1, 2)  # (F, C, H, W)
    frames, channels, height, width = x.shape
    t, h, w = frames // tp, height // p, width // p
    if t * tp != frames or h * p != height or w * p != width or h % m or w % m:
        raise ValueError(
            f"video {tuple(video.shape)} does not tile into {tp}x{p}x{p} patches "
            f"with {m}x{m} merge windows"
        )
    x = (x - 0.5) / 0.5
    x = x.reshape(t, tp, channels, h // m, m, p, w // m, m, p)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(t * h * w, channels * tp * p * p), (t, h, w)
