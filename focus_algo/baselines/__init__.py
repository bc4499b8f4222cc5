"""Token-granularity baselines: CMC (codec reuse) and AdapTiV (sign merging).

Both return :class:`focus_algo.sic.SICResult` with token decisions broadcast
to every vector of the token, so the Focus report/trace machinery applies.
Published knobs live in ``cmc_config.csv`` / ``adaptiv_config.csv`` (see
``focus_algo/reference/algorithm``, the default); pass another folder as ``csv_dir``.
"""

from .adaptiv import adaptiv_concentrate, adaptiv_threshold, sign_similarity
from .cmc import CMCThresholds, cmc_attn_sparsity, cmc_concentrate, cmc_sparsity, cmc_thresholds

__all__ = [
    "cmc_concentrate",
    "adaptiv_concentrate",
    "baseline_threshold",
    "CMCThresholds",
    "cmc_thresholds",
    "adaptiv_threshold",
    "cmc_attn_sparsity",
    "cmc_sparsity",
    "sign_similarity",
    "BASELINES",
]

#: method name -> concentrator ``f(x, grid, threshold, *, params=None)``.
BASELINES = {"cmc": cmc_concentrate, "adaptiv": adaptiv_concentrate}


def baseline_threshold(method: str, model: str, dataset: str, *, csv_dir=None) -> float:
    """The concentrator threshold of ``method`` ('cmc': CMC_threshold of the
    linear layers; 'adaptiv': adaptiv_threshold) for model/dataset, falling
    back to the config's ``default`` row."""
    if method == "cmc":
        return cmc_thresholds(model, dataset, csv_dir=csv_dir).linear
    if method == "adaptiv":
        return adaptiv_threshold(model, dataset, csv_dir=csv_dir)
    raise ValueError(f"unknown baseline method {method!r}; expected one of {sorted(BASELINES)}")
