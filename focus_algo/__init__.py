"""Focus reference algorithm (torch): SEC, SIC, sparse traces, golden vectors,
and Focus inside transformers VLMs.

Only the ``focus_config.csv`` loader is imported eagerly; sparse traces
(pandas), SEC, SIC and the transformers integration (``enable_focus``,
``compare``) are imported on first use, so ``import focus_algo`` (and the
performance model, and ``focus --help``) needs no torch.
"""

import importlib

from .config import params_from_focus_config

__all__ = [
    "SICResult",
    "similarity_concentrate",
    "importance",
    "keep_count",
    "select_tokens",
    "params_from_focus_config",
    "SITES",
    "SiteTrace",
    "SparseTrace",
    "TraceError",
    "TraceMeta",
    "enable_focus",
    "compare",
]

#: Lazily imported names -> their submodule.
_LAZY = {
    "SICResult": "sic",
    "similarity_concentrate": "sic",
    "importance": "sec",
    "keep_count": "sec",
    "select_tokens": "sec",
    "SITES": "trace",
    "SiteTrace": "trace",
    "SparseTrace": "trace",
    "TraceError": "trace",
    "TraceMeta": "trace",
    "enable_focus": "integration",
    "compare": "integration",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'focus_algo' has no attribute {name!r}")
