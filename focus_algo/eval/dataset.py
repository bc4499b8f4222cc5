"""Local multiple-choice dataset format of ``focus eval``.

A dataset is a JSONL file, one JSON object per line (blank lines are
ignored). Media paths are relative to the JSONL file's folder.

Video question answering::

    {"id": "v1", "video": "clips/v1",  "question": "What happens?",
     "options": ["A. a dog runs", "B. a cat sleeps"], "answer": "A"}

``video`` is a folder of frame images (.png/.jpg/.jpeg/.bmp, taken in file
name order) or a ``.npy`` file holding a (F, H, W, 3) uint8 array.

Images::

    {"id": "i1", "image": "imgs/i1.png", "question": "...", "options": [...], "answer": "B"}

Rules (checked by :func:`load_dataset`; a violation raises
:class:`DatasetError` naming the file, the line and the field): ``id`` is a
non-empty string or an integer, unique in the file; exactly one of
``video`` / ``image`` is a non-empty string; ``question`` is a non-empty
string; ``options`` is a list of at least two strings, each starting with a
distinct capital letter followed by ``.`` (``"A. ..."``); ``answer`` is one
of those letters. Media are read lazily (:func:`load_media`): a missing or
unreadable file raises :class:`MediaError`, which the runner records as the
sample's error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "Sample",
    "DatasetError",
    "MediaError",
    "load_dataset",
    "load_media",
    "sample_frames",
    "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_OPTION = re.compile(r"^([A-Z])\.\s")


class DatasetError(ValueError):
    """A malformed dataset file or row."""


class MediaError(ValueError):
    """A sample's media cannot be read."""


@dataclass(frozen=True)
class Sample:
    id: str
    kind: str  #: "video" or "image"
    media: Path  #: absolute media path
    question: str
    options: tuple[str, ...]
    answer: str  #: option letter
    line: int  #: 1-based line in the JSONL file

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(o[0] for o in self.options)


def _parse_row(row, line: int, where: str, base: Path) -> Sample:
    def fail(field, why):
        raise DatasetError(f"{where} line {line}: field {field!r} {why}")

    if not isinstance(row, dict):
        raise DatasetError(f"{where} line {line}: must be a JSON object, got {type(row).__name__}")
    sid = row.get("id")
    if isinstance(sid, bool) or not isinstance(sid, (str, int)) or str(sid).strip() == "":
        fail("id", "must be a non-empty string or an integer")
    kinds = [k for k in ("video", "image") if k in row]
    if len(kinds) != 1:
        raise DatasetError(
            f"{where} line {line}: needs exactly one of the fields 'video' "
            f"or 'image' (found {kinds or 'neither'})"
        )
    kind = kinds[0]
    media = row[kind]
    if not isinstance(media, str) or not media.strip():
        fail(kind, "must be a non-empty path string")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        fail("question", "must be a non-empty string")
    options = row.get("options")
    if (
        not isinstance(options, list)
        or len(options) < 2
        or not all(isinstance(o, str) for o in options)
    ):
        fail("options", "must be a list of at least two strings")
    letters = []
    for o in options:
        m = _OPTION.match(o)
        if not m:
            fail(
                "options", f"entry {o!r} must start with a capital letter and '. ' (e.g. 'A. ...')"
            )
        letters.append(m.group(1))
    if len(set(letters)) != len(letters):
        fail("options", f"letters {letters} are not distinct")
    answer = row.get("answer")
    if answer not in letters:
        fail("answer", f"must be one of the option letters {letters}, got {answer!r}")
    try:
        path = (base / media).resolve()
    except ValueError as e:  # NUL character, unencodable surrogate
        fail(kind, f"is not a usable path ({e})")
    return Sample(
        id=str(sid),
        kind=kind,
        media=path,
        question=question,
        options=tuple(options),
        answer=answer,
        line=line,
    )


def load_dataset(path) -> list[Sample]:
    """Read and validate a JSONL dataset (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset {path} does not exist")
    samples, seen = [], {}
    with path.open("rb") as f:
        for line, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DatasetError(
                    f"{path} line {line}: not UTF-8 text ({e.reason} at byte {e.start})"
                ) from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path} line {line}: not valid JSON ({e.msg})") from None
            except (ValueError, RecursionError) as e:  # e.g. an integer of 5000 digits
                raise DatasetError(f"{path} line {line}: not valid JSON ({e})") from None
            sample = _parse_row(row, line, str(path), path.parent)
            if sample.id in seen:
                raise DatasetError(
                    f"{path} line {line}: field 'id' {sample.id!r} repeats line {seen[sample.id]}"
                )
            seen[sample.id] = line
            samples.append(sample)
    if not samples:
        raise DatasetError(f"dataset {path} holds no rows")
    return samples


def sample_frames(frames: np.ndarray, count: int | None) -> np.ndarray:
    """``count`` frames spread uniformly over the clip (first and last
    included); all of them when ``count`` is None or >= the clip length."""
    n = len(frames)
    if count is None or count >= n:
        return frames
    if count < 1:
        raise ValueError(f"frame count must be >= 1, got {count}")
    return frames[np.linspace(0, n - 1, count).round().astype(int)]


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise MediaError(f"{path}: cannot read image ({e})") from None


def load_media(sample: Sample, frames: int | None = None) -> np.ndarray:
    """The sample's pixels as uint8 RGB: (H, W, 3) for an image, (F, H, W, 3)
    for a video (``frames`` uniformly sampled)."""
    path = sample.media
    if not path.exists():
        raise MediaError(f"{sample.kind} {path} does not exist")
    if sample.kind == "image":
        return _read_image(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise MediaError(f"video folder {path} holds no frame images {IMAGE_SUFFIXES}")
        picked = sample_frames(np.arange(len(files)), frames)
        video = [_read_image(files[i]) for i in picked]
        if len({v.shape for v in video}) != 1:
            raise MediaError(f"video folder {path}: frames differ in size")
        return np.stack(video)
    if path.suffix != ".npy":
        raise MediaError(f"video {path} must be a folder of frames or a .npy file")
    try:
        video = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise MediaError(f"{path}: cannot read .npy ({e})") from None
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3 or len(video) == 0:
        raise MediaError(
            f"{path}: must hold a (F, H, W, 3) uint8 array, got {video.dtype} {video.shape}"
        )
    return sample_frames(video, frames)
