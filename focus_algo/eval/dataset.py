"""Local multiple-choice dataset format of ``focus eval``.

A dataset is a JSONL file, one JSON object per line (blank lines are
ignored). Media paths are relative to the JSONL file's folder.

Video question answering::

    {"id": "v1", "video": "clips/v1",  "question": "What happens?",
     "options": ["A. a dog runs", "B. a cat sleeps"], "answer": "A"}

``video`` is a folder of frame images (.png/.jpg/.jpeg/.bmp, taken in file
name order), a ``.npy`` file holding a (F, H, W, 3) uint8 array, or a video
file that PyAV (FFmpeg) reads: ``.mp4``, ``.mkv``, ``.webm``, ``.avi``, ...
(see :mod:`focus_algo.media`).

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

from focus_algo.media import IMAGE_SUFFIXES, MediaError, read_image, read_video, sample_frames

__all__ = [
    "Sample",
    "DatasetError",
    "MediaError",
    "load_dataset",
    "load_media",
    "sample_frames",
    "IMAGE_SUFFIXES",
]

_OPTION = re.compile(r"^([A-Z])\.\s")


class DatasetError(ValueError):
    """A malformed dataset file or row."""


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


def load_media(sample: Sample, frames: int | None = None) -> np.ndarray:
    """The sample's pixels as uint8 RGB: (H, W, 3) for an image, (F, H, W, 3)
    for a video (``frames`` uniformly sampled; see :mod:`focus_algo.media`)."""
    if sample.kind == "image":
        return read_image(sample.media)
    return read_video(sample.media, frames)
