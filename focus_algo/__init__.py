"""Focus reference algorithm (torch): SEC, SIC, sparse traces, golden vectors,
and Focus inside transformers VLMs.

The transformers integration (``enable_focus``, ``compare``) is imported on
first use, so ``import focus_algo`` stays light.
"""

from .sec import importance, keep_count, params_from_focus_config, select_tokens
from .sic import SICResult, similarity_concentrate
from .trace import SITES, SiteTrace, SparseTrace, TraceError, TraceMeta

__all__ = ["SICResult", "similarity_concentrate", "importance", "keep_count",
           "select_tokens", "params_from_focus_config", "SITES", "SiteTrace", "SparseTrace",
           "TraceError", "TraceMeta", "enable_focus", "compare"]


def __getattr__(name):
    if name in ("enable_focus", "compare"):
        from . import integration
        return getattr(integration, name)
    raise AttributeError(f"module 'focus_algo' has no attribute {name!r}")
