"""Decoder workloads: the GEMM shapes of one transformer layer stack.

A :class:`Workload` is the language model's shape plus the visual token
count ``tokens`` (T) and its frame geometry. It is the project's one workload
type: the performance model simulates it, and the built-in video
(:class:`focus_algo.workload.VideoWorkload`) generates GEMM inputs of its
shape. Torch-free. The performance model runs the
decoder GEMMs on the visual tokens only: the paper's artifact counts exactly
that (its ``dense_ops`` equal the visual-token MACs of q/k/v/o/gate/up/down
plus causal attention for every ``meta_data.csv`` row), so text tokens (a few dozen
prompt tokens, <1% of the rows) are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from focus_algo.reference import REFERENCE_DIR  # the paper's numbers (re-exported)

__all__ = [
    "Workload",
    "WorkloadError",
    "qwen2_7b",
    "paper_workloads",
    "paper_workload",
    "from_config",
    "REFERENCE_DIR",
    "VIDEO_WORKLOADS",
]


#: The 9 video model/dataset pairs of the paper's main comparison.
VIDEO_WORKLOADS = tuple(
    (m, d)
    for m in ("llava_vid", "llava_onevision", "minicpm_v")
    for d in ("videomme", "mlvu", "mvbench")
)


class WorkloadError(ValueError):
    """A workload or model configuration that cannot be simulated."""


@dataclass(frozen=True)
class Workload:
    """Shapes of a decoder-only language model run on ``tokens`` visual tokens."""

    name: str
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    layers: int
    tokens: int
    frames: int = 1
    height: int = 1
    width: int = 1
    model: str = ""
    dataset: str = ""

    def __post_init__(self):
        for f in (
            "hidden",
            "heads",
            "kv_heads",
            "head_dim",
            "ffn",
            "layers",
            "frames",
            "height",
            "width",
            "tokens",
        ):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise WorkloadError(f"Workload.{f}={v!r}: must be an integer >= 1")
        if self.heads % self.kv_heads:
            raise WorkloadError(
                f"Workload: heads={self.heads} is not a multiple of kv_heads={self.kv_heads}"
            )

    @property
    def gqa(self) -> int:
        """Query heads per KV head."""
        return self.heads // self.kv_heads

    @property
    def grid(self) -> tuple[int, int, int]:
        """Token geometry (frames, height, width)."""
        return (self.frames, self.height, self.width)

    @property
    def site_widths(self) -> dict[str, int]:
        """Feature width (GEMM K) of the input of each SIC site."""
        q = self.heads * self.head_dim
        return {
            "q_proj": self.hidden,
            "query": q,
            "o_proj": q,
            "gate_proj": self.hidden,
            "down_proj": self.ffn,
        }

    def linears(self) -> list[tuple[str, str, int, int]]:
        """(gemm, input site, K, N) of the projection GEMMs of one layer."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return [
            ("q", "q_proj", self.hidden, q),
            ("k", "q_proj", self.hidden, kv),
            ("v", "q_proj", self.hidden, kv),
            ("o", "o_proj", q, self.hidden),
            ("gate", "gate_proj", self.hidden, self.ffn),
            ("up", "gate_proj", self.hidden, self.ffn),
            ("down", "down_proj", self.ffn, self.hidden),
        ]

    def weight_sizes(self) -> dict[str, int]:
        """Weight elements read per input site in one layer (the averaging
        weights of :ref:`method-sparsity`): the projections fed by the site, and
        for "query" the keys (T x heads*head_dim) of QK^T."""
        out = dict.fromkeys(self.site_widths, 0)
        for _, site, k, n in self.linears():
            out[site] += k * n
        out["query"] += self.heads * self.head_dim * self.tokens
        return out

    def dense_macs(self) -> int:
        """MACs of the dense decoder on T tokens (causal attention: T^2/2 per GEMM)."""
        t = self.tokens
        lin = sum(k * n for _, _, k, n in self.linears()) * t
        att = 2 * self.heads * self.head_dim * ((t * t + 1) // 2)
        return self.layers * (lin + att)

    def with_tokens(
        self, tokens: int, frames: int = 1, height: int = 1, width: int | None = None
    ) -> Workload:
        return replace(
            self,
            tokens=tokens,
            frames=frames,
            height=height,
            width=tokens // (frames * height) if width is None else width,
        )


def qwen2_7b(
    tokens: int, frames: int = 1, patches: int | None = None, name: str = "qwen2_7b"
) -> Workload:
    """The Qwen2-7B decoder (also the LM of LLaVA-Video/OneVision, MiniCPM-V 2.6
    and, shape-wise, Qwen2.5-VL-7B) on ``tokens`` visual tokens."""
    patches = tokens // frames if patches is None else patches
    return Workload(
        name=name,
        hidden=3584,
        heads=28,
        kv_heads=4,
        head_dim=128,
        ffn=18944,
        layers=28,
        tokens=tokens,
        frames=frames,
        height=1,
        width=patches,
    )


def paper_workloads(meta_csv: Path | None = None) -> list[Workload]:
    """The 15 model/dataset shapes of the paper (``meta_data.csv``): all use a
    Qwen2-7B-shaped LM; T = 'Sequence length' (visual tokens; frames x
    patches except for any-resolution images, e.g. llava_onevision/vqav2)."""
    import pandas as pd

    path = Path(meta_csv or REFERENCE_DIR / "algorithm" / "meta_data.csv")
    df = pd.read_csv(path)
    need = {"Model", "Dataset", "Sequence length", "Num frames", "Num patches"}
    if not need <= set(df.columns):
        raise WorkloadError(f"{path}: missing columns {sorted(need - set(df.columns))}")
    out = []
    for r in df.itertuples(index=False):
        t, f, p = int(r[2]), int(r[3]), int(r[4])
        w = qwen2_7b(t, frames=f, patches=p, name=f"{r[0]}/{r[1]}")
        out.append(replace(w, model=r[0], dataset=r[1]))
    return out


def paper_workload(model: str, dataset: str) -> Workload:
    for w in paper_workloads():
        if (w.model, w.dataset) == (model, dataset):
            return w
    raise WorkloadError(f"no paper workload {model}/{dataset} in meta_data.csv")


_CONFIG_KEYS = ("hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers")


def from_config(path, tokens: int, frames: int = 1, name: str | None = None) -> Workload:
    """A decoder workload from a transformers ``config.json`` (local file).

    Multimodal configs (Qwen2-VL, LLaVA-OneVision, ...) nest the language model
    under ``text_config`` (or ``llm_config``); that part is used when present.
    """
    path = Path(path)
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:  # ValueError: bad JSON, not UTF-8
        raise WorkloadError(f"{path}: cannot read config.json: {e}") from e
    if not isinstance(cfg, dict):
        raise WorkloadError(f"{path}: config.json must hold a JSON object")
    for key in ("text_config", "llm_config", "language_config"):
        if isinstance(cfg.get(key), dict) and "hidden_size" in cfg[key]:
            cfg = cfg[key]
            break
    missing = [k for k in _CONFIG_KEYS if k not in cfg]
    if missing:
        raise WorkloadError(f"{path}: config lacks {', '.join(missing)}")
    try:
        hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        kv = int(cfg.get("num_key_value_heads") or heads)
        head_dim = int(cfg.get("head_dim") or hidden // heads)
        return Workload(
            name=name or path.parent.name or "config",
            hidden=hidden,
            heads=heads,
            kv_heads=kv,
            head_dim=head_dim,
            ffn=int(cfg["intermediate_size"]),
            layers=int(cfg["num_hidden_layers"]),
            tokens=tokens,
            frames=frames,
            height=1,
            width=max(1, tokens // frames),
        )
    except (TypeError, ValueError) as e:
        raise WorkloadError(f"{path}: bad value in config: {e}") from e
