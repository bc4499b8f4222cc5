"""Independent check of the dense tile timing against SCALE-Sim 3.0.

SCALE-Sim's weight-stationary ("ws") dataflow, at the same array size, with
on-chip buffers large enough to never stall, counts the compute cycles of a
GEMM fold by fold (each fold = one rows x cols weight tile, filled, streamed
and drained on its own). We compare with ``focus_hw.timing``: per fold
``tile_cycles(M)`` and the RTL's
back-to-back stream (:func:`sim.model.stream_cycles`, the default).
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from pathlib import Path

import pandas as pd

from focus_hw import FocusParams
from focus_hw.timing import tile_cycles

from .model import stream_cycles

__all__ = ["scalesim_cycles", "compare", "SHAPES"]

#: Small (M, K, N) GEMMs: one fold, several folds, ragged edges.
SHAPES = ((64, 32, 32), (200, 32, 32), (128, 64, 64), (100, 96, 40), (512, 128, 96))

_CONFIG = """[general]
run_name = check

[architecture_presets]
ArrayHeight : {rows}
ArrayWidth : {cols}
IfmapSramSzkB : 4096
FilterSramSzkB : 4096
OfmapSramSzkB : 4096
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : 1024
Dataflow : ws
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : 10
IfmapSRAMBankNum : 10
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : 10
FilterSRAMBankNum : 10
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : USER
UseRamulatorTrace : False
"""


def scalesim_cycles(shapes, params: FocusParams) -> list[int]:
    """SCALE-Sim ws compute cycles of each (M, K, N) GEMM: the length of its
    compute unit's demand matrices (one row per cycle, fill/drain included;
    SCALE-Sim's memory simulation is skipped: buffers never stall here).
    Config and topology files live in a temporary directory."""
    from scalesim.compute.operand_matrix import operand_matrix
    from scalesim.compute.systolic_compute_ws import systolic_compute_ws
    from scalesim.layout_utils import layouts
    from scalesim.scale_config import scale_config
    from scalesim.topology_utils import topologies

    with tempfile.TemporaryDirectory(prefix="focus-scalesim-") as tmp:
        tmp = Path(tmp)
        (tmp / "check.cfg").write_text(_CONFIG.format(rows=params.rows, cols=params.cols))
        (tmp / "gemm.csv").write_text(
            "Layer, M, N, K,\n"
            + "".join(f"g{i}, {m}, {n}, {k},\n" for i, (m, k, n) in enumerate(shapes))
        )
        (tmp / "layout.csv").write_text("Layer,\n")
        with contextlib.redirect_stdout(io.StringIO()):
            cfg = scale_config()
            cfg.read_conf_file(str(tmp / "check.cfg"))
            topo = topologies()
            topo.load_arrays(topofile=str(tmp / "gemm.csv"), mnk_inputs=True)
            lay = layouts()
            lay.load_arrays(layoutfile=str(tmp / "layout.csv"))
            out = []
            for i in range(len(shapes)):
                op = operand_matrix()
                op.set_params(config_obj=cfg, topoutil_obj=topo, layoututil_obj=lay, layer_id=i)
                ws = systolic_compute_ws()
                ws.set_params(
                    config_obj=cfg,
                    ifmap_op_mat=op.get_ifmap_matrix()[1],
                    filter_op_mat=op.get_filter_matrix()[1],
                    ofmap_op_mat=op.get_ofmap_matrix()[1],
                )
                out.append(max(len(d) for d in ws.get_demand_matrices()))
    return out


def compare(params: FocusParams, shapes=SHAPES) -> pd.DataFrame:
    """SCALE-Sim vs our per-fold and streamed cycle counts per shape."""
    ref = scalesim_cycles(shapes, params)
    rows = []
    for (m, k, n), s in zip(shapes, ref):
        folds = math.ceil(k / params.rows) * math.ceil(n / params.cols)
        per_fold = folds * tile_cycles(m, params)
        stream = stream_cycles([m] * folds, params)
        rows.append(
            {
                "M": m,
                "K": k,
                "N": n,
                "folds": folds,
                "scalesim": s,
                "model_tile": per_fold,
                "model_stream": stream,
                "tile_minus_scalesim": per_fold - s,
                "per_fold_diff": (per_fold - s) / folds,
                "stream_vs_scalesim": stream / s - 1,
            }
        )
    return pd.DataFrame(rows)
