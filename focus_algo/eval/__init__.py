"""Accuracy runs: local JSONL datasets, resumable dense/Focus/CMC/AdapTiV scoring, CLI.

The names below are imported on first use (the runner needs torch), so
``focus eval --help`` does not import torch.
"""

import importlib

#: The methods ``focus eval`` scores, in run order (dense first: the reference).
METHODS = ("dense", "focus", "cmc", "adaptiv")

_LAZY = {
    "Sample": "dataset",
    "DatasetError": "dataset",
    "MediaError": "dataset",
    "load_dataset": "dataset",
    "load_media": "dataset",
    "sample_frames": "dataset",
    "CheckpointError": "runner",
    "MethodSpec": "runner",
    "COLUMNS": "runner",
    "build_prompt": "runner",
    "load_checkpoint": "runner",
    "run_eval": "runner",
    "summarize": "runner",
}

__all__ = ["METHODS", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
