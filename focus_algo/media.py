"""Images and videos as uint8 RGB arrays (torch-free).

A video is a folder of frame images (:data:`IMAGE_SUFFIXES`, taken in file
name order), a ``.npy`` file holding a (F, H, W, 3) uint8 array, or any other
file that FFmpeg demuxes and decodes through PyAV (``.mp4``, ``.mkv``,
``.webm``, ``.avi``, ``.mov``, ...; the first video stream). ``frames``
samples uniformly over the clip, first and last frame included, as
lmms-eval does; of a video file only the frames up to the last picked one are
decoded, and only the picked ones are converted to RGB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "MediaError", "sample_frames", "read_image", "read_video"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


class MediaError(ValueError):
    """An image or video cannot be read (the message names the file)."""


def sample_frames(frames: np.ndarray, count: int | None) -> np.ndarray:
    """``count`` frames spread uniformly over the clip (first and last
    included); all of them when ``count`` is None or >= the clip length."""
    n = len(frames)
    if count is None or count >= n:
        return frames
    if count < 1:
        raise ValueError(f"frame count must be >= 1, got {count}")
    return frames[np.linspace(0, n - 1, count).round().astype(int)]


def read_image(path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB."""
    from PIL import Image

    path = Path(path)
    if not path.exists():
        raise MediaError(f"image {path} does not exist")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise MediaError(f"{path}: cannot read image ({e})") from None


def _stack(frames: list, path: Path) -> np.ndarray:
    if len({f.shape for f in frames}) != 1:
        raise MediaError(f"video {path}: frames differ in size")
    return np.stack(frames)


def read_video(path, frames: int | None = None) -> np.ndarray:
    """A video (see the module docstring) as (F, H, W, 3) uint8 RGB,
    ``frames`` of it uniformly sampled (all when None)."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"video {path} does not exist")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise MediaError(f"video folder {path} holds no frame images {IMAGE_SUFFIXES}")
        picked = sample_frames(np.arange(len(files)), frames)
        return _stack([read_image(files[i]) for i in picked], path)
    if path.suffix.lower() == ".npy":
        try:
            video = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise MediaError(f"{path}: cannot read .npy ({e})") from None
        if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3 or len(video) == 0:
            raise MediaError(
                f"{path}: must hold a (F, H, W, 3) uint8 array, got {video.dtype} {video.shape}"
            )
        return sample_frames(video, frames)
    return _stack(_decode_file(path, frames), path)


def _decode_file(path: Path, count: int | None) -> list[np.ndarray]:
    """The uniformly sampled frames of a video file, decoded with PyAV."""
    import av

    def decode(total: int) -> tuple[list[np.ndarray], int]:
        """The picked frames of ``total`` and the number of frames decoded."""
        picks = set(sample_frames(np.arange(total), count).tolist())
        out, n = [], 0
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for n, frame in enumerate(container.decode(stream), start=1):
                if n - 1 in picks:
                    out.append(frame.to_ndarray(format="rgb24"))
                    if len(out) == len(picks):
                        break
        return out, n

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: holds no video stream")
            stream = container.streams.video[0]
            # the container's frame count, else its packets (demuxed, not decoded)
            total = stream.frames or sum(1 for p in container.demux(stream) if p.size)
        video, decoded = decode(total)
        if len(video) < min(total, count or total):  # fewer frames than the header said
            video, decoded = decode(decoded)
    except MediaError:
        raise
    except (av.FFmpegError, OSError, ValueError) as e:
        raise MediaError(f"{path}: cannot read video ({e})") from None
    if not video:
        raise MediaError(f"{path}: holds no video frames")
    return video
