"""The SEC's emitted Verilog, simulated by Icarus Verilog, equals
:func:`focus_hw.simulate_sec` (the Amaranth simulation, tested against the
torch reference in test_sec_rtl) on the same stimulus: the kept indices,
their ``last`` flag, the ``nan`` flag and the cycle count, with random
backpressure on ``kept``."""

import numpy as np
import pytest
import torch

from focus_hw import sec_cycles, simulate_sec
from focus_hw.generate import generate
from focus_hw.sec import SECNaNError
from focus_hw.sec.encoder import kept_layout
from focus_hw.sec.simulate import sec_beats
from test_crosssim import _ports, _run_iverilog, _trace_tb, _write_inputs
from test_sec_rtl import DTYPES, attention, small
from tools import require


def _attn(dtype: str, case: str):
    """(attn, visual, text, k): 2 heads x 2 text queries over 20 visual
    tokens; ``ties``: probabilities in eighths, signs mixed (both zeros);
    ``nan``: one NaN importance."""
    rng = np.random.default_rng(list((dtype + case).encode()))
    attn = attention(rng, 2, 1, 20, 2, levels=8 if case == "ties" else None)
    if case == "ties":
        attn = torch.where(torch.from_numpy(rng.random(attn.shape) < 0.5), attn, -attn)
    if case == "nan":
        attn[1, 22, 5] = float("nan")
    return attn.to(DTYPES[dtype]), slice(1, 21), slice(21, None), 7


@pytest.mark.parametrize(
    "dtype, case",
    [("fp16", "random"), ("fp16", "ties"), ("bf16", "random"), ("bf16", "ties"), ("bf16", "nan")],
)
def test_sec_verilog_equals_simulate_sec(tmp_path, dtype, case):
    require("iverilog", "vvp")
    p = small(dtype)
    attn, visual, text, k = _attn(dtype, case)
    beats, n, k = sec_beats(attn, visual, text, k, p)
    length = 2 * sec_cycles(len(beats) // n, n, p)
    refused = np.random.default_rng(1).random(length) < 0.6
    kept_ready = lambda cycle: not refused[cycle]  # noqa: E731
    try:
        run = simulate_sec(attn, visual, text, k, p, kept_ready=kept_ready)
    except SECNaNError:
        assert case == "nan"
        run = None

    # simulate_sec's stimulus, cycle by cycle: a beat per cycle (the SEC takes
    # one per cycle while it analyzes), then kept_ready's pattern.
    vectors = [
        {
            "n": n,
            "k": k,
            "attn__valid": int(c < len(beats)),
            "attn__payload": beats[min(c, len(beats) - 1)],
            "kept__ready": int(c >= len(beats) and kept_ready(c)),
        }
        for c in range(length)
    ]
    manifest = generate(p, tmp_path / "v", unit="sec")
    _write_inputs(tmp_path, manifest, vectors)
    _run_iverilog(tmp_path, _trace_tb(manifest, length), str(tmp_path / "v" / manifest.verilog))
    names = [q["name"] for q in _ports(manifest)[1]]
    trace = [
        dict(zip(names, (int(v, 16) for v in line.split()), strict=True))
        for line in (tmp_path / "out.txt").read_text().splitlines()
    ]
    assert all(out["attn__ready"] for out in trace[: len(beats)])
    done = [c for c, out in enumerate(trace) if out["done"]]
    assert len(done) == 1
    layout = kept_layout(p.max_tokens)
    kept = [
        layout.from_bits(out["kept__payload"])
        for out, vec in zip(trace, vectors)
        if out["kept__valid"] and vec["kept__ready"]
    ]
    assert [beat.last for beat in kept] == [0] * (k - 1) + [1]
    assert trace[done[0]]["nan"] == (run is None)
    if run is not None:
        assert [beat.index for beat in kept] == run.kept.tolist()
        assert done[0] + 1 == run.cycles > sec_cycles(len(beats) // n, n, p)
