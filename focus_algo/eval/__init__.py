"""Accuracy runs: local JSONL datasets, resumable dense/Focus/CMC/AdapTiV scoring, CLI."""

from .dataset import DatasetError, MediaError, Sample, load_dataset, load_media, sample_frames
from .runner import (
    COLUMNS,
    METHODS,
    CheckpointError,
    MethodSpec,
    build_prompt,
    load_checkpoint,
    run_eval,
    summarize,
)

__all__ = [
    "Sample",
    "DatasetError",
    "MediaError",
    "load_dataset",
    "load_media",
    "sample_frames",
    "CheckpointError",
    "MethodSpec",
    "METHODS",
    "COLUMNS",
    "build_prompt",
    "load_checkpoint",
    "run_eval",
    "summarize",
]
