"""Video inputs without torchvision.

transformers' video processors (``Qwen2VLVideoProcessor``,
``LlavaOnevisionVideoProcessor``) need torchvision. Their work is per-frame
image preprocessing, which the checkpoint's PIL image processor does as
well: :class:`FrameVideoProcessor` stands in for the missing video processor
inside the checkpoint's own processor, so the processor's chat template and
video-token expansion stay in charge of the prompt.

* Qwen2-VL / Qwen2.5-VL: every frame goes through the image processor with
  ``temporal_patch_size=1``; the frames (the last one repeated up to a
  multiple of ``temporal_patch_size``) are then paired patch by patch into
  ``pixel_values_videos`` rows of (channel, time, patch row, patch column),
  with ``video_grid_thw = (frames / temporal_patch_size, grid h, grid w)``.
* LLaVA-OneVision: every frame is resized / center-cropped / rescaled /
  normalized (no anyres tiling) and the frames are stacked as
  ``pixel_values_videos`` of shape (1, frames, C, H, W).

The settings are the checkpoint's video processor settings (its
``video_preprocessor_config.json`` or, as in transformers, the image
processor config), on top of the image processor's. Frames are used as given
(``do_sample_frames`` is ignored: ``focus eval --frames`` samples); with
``cap_pixels_per_frame`` set, video samples fail with an error naming it.
Resizing is PIL's, not torchvision's, so pixel values can differ from the
real video processor's by the resampling difference between the two
libraries; shapes, grids and token counts are the same.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FrameVideoProcessor", "video_settings"]

_QWEN = ("qwen2_vl", "qwen2_5_vl")
_LLAVA = ("llava_onevision",)
_KEYS = (
    "do_resize",
    "size",
    "resample",
    "do_center_crop",
    "crop_size",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "do_convert_rgb",
    "patch_size",
    "temporal_patch_size",
    "merge_size",
)


def video_settings(path) -> dict:
    """Preprocessing settings of the checkpoint's video processor (keys of
    ``_KEYS`` and ``cap_pixels_per_frame``; ``min_pixels`` / ``max_pixels``
    folded into ``size`` as transformers does)."""
    from transformers.video_processing_utils import BaseVideoProcessor

    config, _ = BaseVideoProcessor.get_video_processor_dict(str(path), local_files_only=True)
    size = dict(config.get("size") or {})
    if config.get("min_pixels") is not None:
        size["shortest_edge"] = config["min_pixels"]
    if config.get("max_pixels") is not None:
        size["longest_edge"] = config["max_pixels"]
    settings = {
        k: config[k] for k in _KEYS + ("cap_pixels_per_frame",) if config.get(k) is not None
    }
    if size:
        settings["size"] = size
    return settings


class FrameVideoProcessor:
    """A video processor made of the checkpoint's PIL image processor.

    ``model_type`` is the checkpoint's (``qwen2_vl``, ``qwen2_5_vl`` or
    ``llava_onevision``); ``settings`` override the image processor's
    attributes (see :func:`video_settings`). Called like a transformers video
    processor on a list of (F, H, W, 3) uint8 videos.
    """

    def __init__(self, image_processor, model_type: str, settings: dict | None = None):
        if model_type not in _QWEN + _LLAVA:
            raise ValueError(f"no frame-wise video preprocessing for model_type {model_type!r}")
        if getattr(image_processor, "backend", None) != "pil":
            raise ValueError(
                f"FrameVideoProcessor needs a PIL image processor, got "
                f"{type(image_processor).__name__}"
            )
        self.image_processor = image_processor
        self.model_type = model_type
        base = image_processor.to_dict()
        self.settings = {k: base[k] for k in _KEYS if base.get(k) is not None}
        self.settings.update(settings or {})
        if model_type in _QWEN:
            self.merge_size = self.settings["merge_size"]
            self.temporal_patch_size = self.settings["temporal_patch_size"]

    def __call__(self, videos, return_tensors=None, **kwargs):
        from transformers import BatchFeature
        from transformers.video_utils import make_batched_metadata

        if self.settings.get("cap_pixels_per_frame"):
            raise ValueError(
                "the checkpoint's video processor caps pixels per frame "
                "(cap_pixels_per_frame), which needs torchvision"
            )
        videos = [np.asarray(v) for v in videos]
        for v in videos:
            if v.ndim != 4 or v.shape[-1] != 3 or len(v) == 0:
                raise ValueError(f"a video must be a (F, H, W, 3) array, got shape {v.shape}")
        if self.model_type in _QWEN:
            parts = [self._qwen(v) for v in videos]
            data = {
                "pixel_values_videos": np.concatenate([p for p, _ in parts]),
                "video_grid_thw": np.array([g for _, g in parts], dtype=np.int64),
            }
        else:
            data = {"pixel_values_videos": np.stack([self._llava(v) for v in videos])}
        out = BatchFeature(data, tensor_type=return_tensors)
        # no fps known: the metadata transformers makes for arrays (Qwen2.5-VL's
        # second_per_grid_ts reads it)
        out["video_metadata"] = make_batched_metadata(videos, None)
        return out

    def _qwen(self, video: np.ndarray) -> tuple[np.ndarray, list[int]]:
        tp = self.temporal_patch_size
        pad = -len(video) % tp
        if pad:
            video = np.concatenate([video, np.repeat(video[-1:], pad, axis=0)])
        keys = (
            "size",
            "resample",
            "do_resize",
            "do_rescale",
            "rescale_factor",
            "do_normalize",
            "image_mean",
            "image_std",
            "do_convert_rgb",
            "patch_size",
            "merge_size",
        )
        frames = self.image_processor(
            list(video),
            temporal_patch_size=1,
            return_tensors="np",
            **{k: self.settings[k] for k in keys if k in self.settings},
        )
        ((_, gh, gw),) = np.unique(frames["image_grid_thw"], axis=0)
        t, n = len(video) // tp, gh * gw
        x = frames["pixel_values"].reshape(t, tp, n, 3, -1)  # (T, tp, patch, C, p*p)
        x = x.transpose(0, 2, 3, 1, 4).reshape(t * n, -1)  # (T*patch, C*tp*p*p)
        return x, [t, int(gh), int(gw)]

    def _llava(self, video: np.ndarray) -> np.ndarray:
        from transformers.image_utils import SizeDict

        ip, s = self.image_processor, self.settings
        out = []
        for frame in video:
            x = ip.process_image(frame, do_convert_rgb=s.get("do_convert_rgb"))  # (C, H, W)
            if s.get("do_resize"):
                x = ip.resize(x, SizeDict(**s["size"]), resample=s.get("resample"))
            if s.get("do_center_crop"):
                x = ip.center_crop(x, SizeDict(**s["crop_size"]))
            if s.get("do_rescale"):
                x = ip.rescale(x, s["rescale_factor"])
            if s.get("do_normalize"):
                x = ip.normalize(x, s["image_mean"], s["image_std"])
            out.append(np.asarray(x, dtype=np.float32))
        return np.stack(out)
