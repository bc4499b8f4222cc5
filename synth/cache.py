"""On-disk cache of synthesis results, validated on read.

Root: the ``cache_dir`` argument, else ``$FOCUS_HW_CACHE``, else
``~/.cache/focus-hw``. One JSON file per key (unit, params digest, flow,
flat, Yosys version, sha256 of the synthesized netlist); it stores its key
and the sha256 of its payload, and an entry that does not match either is
ignored (and overwritten by the next result).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from focus_hw.fileio import atomic_write_text, default_cache_dir

from .area import FlowResult

__all__ = ["default_cache_dir", "ResultCache"]


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


class ResultCache:
    """Cache of :class:`~synth.area.FlowResult` by a key dict."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: dict) -> Path:
        name = hashlib.sha256(_canon(key).encode()).hexdigest()[:32]
        return self.root / "area" / f"{key['unit']}-{key['flow']}-{name}.json"

    def get(self, key: dict) -> FlowResult | None:
        """The cached result for ``key``, or None if absent or invalid."""
        try:
            entry = json.loads(self.path(key).read_text())
            if entry["key"] != key:
                return None
            if hashlib.sha256(_canon(entry["result"]).encode()).hexdigest() != entry["sha256"]:
                return None
            return FlowResult.from_dict(entry["result"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: dict, result: FlowResult) -> Path:
        payload = result.to_dict()
        entry = {
            "key": key,
            "result": payload,
            "sha256": hashlib.sha256(_canon(payload).encode()).hexdigest(),
        }
        path = self.path(key)
        atomic_write_text(path, json.dumps(entry, indent=1, sort_keys=True))
        return path
