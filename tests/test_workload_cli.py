"""Built-in video workload and the ``focus`` CLI."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import sim
from focus_algo.cli import main
from focus_algo.trace import SITES, SparseTrace
from focus_algo.workload import MOTIONS, VideoWorkload, video_workload
from focus_hw.params import FocusParams

TINY = dict(frames=8, height=6, width=7, hidden=64, ffn=96, layers=2, heads=4, kv_groups=2, rank=16)


@pytest.fixture(scope="module")
def tiny():
    wl = video_workload(**TINY)
    return wl, wl.video(), wl.embed(), list(wl)


def test_shapes(tiny):
    wl, video, embed, layers = tiny
    assert wl.shape.grid == (8, 6, 7) and wl.shape.tokens == 336
    # the shape is the performance model's workload type
    assert wl.shape == sim.Workload(
        name="built-in video",
        hidden=64,
        heads=4,
        kv_heads=2,
        head_dim=16,
        ffn=96,
        layers=2,
        tokens=336,
        frames=8,
        height=6,
        width=7,
    )
    assert video.shape == (8, 6 * 14, 7 * 14, 3) and video.dtype == np.float32
    assert 0.0 <= video.min() and video.max() <= 1.0
    assert embed.shape == (336, 64)
    assert [layer for layer, _ in layers] == [0, 1]
    for _, inputs in layers:
        assert list(inputs) == list(SITES)
        for site, x in inputs.items():
            assert x.shape == (336, wl.shape.site_widths[site]) and x.dtype == torch.float16
            assert torch.isfinite(x).all() and x.abs().max() > 0
    assert wl.shape.site_widths["down_proj"] == 96
    # averaging weights (docs/method.rst, 'Sparsity and its weighting'):
    # q: d*d + 2*d*d/gqa, o: d*d, query: d*seq, gate: 2*d*ffn, down: d*ffn
    assert wl.shape.weight_sizes() == {
        "q_proj": 64 * 64 + 2 * 64 * 64 // 2,
        "query": 64 * 336,
        "o_proj": 64 * 64,
        "gate_proj": 2 * 64 * 96,
        "down_proj": 64 * 96,
    }


def test_clips_and_motion(tiny):
    wl = tiny[0]
    clips = wl.clips
    assert [c.start for c in clips] == [0, 4] and [c.length for c in clips] == [4, 4]
    assert [c.motion for c in clips] == list(MOTIONS[:2])
    assert clips[0].image != clips[1].image
    assert video_workload(frames=10, clip_len=4).clips[-1].length == 2


def test_determinism(tiny):
    wl, video, embed, layers = tiny
    again = video_workload(**TINY)
    np.testing.assert_array_equal(again.video(), video)
    # layer l does not depend on how many layers follow it
    _, first = next(iter(video_workload(**(TINY | {"layers": 1}))))
    for site in SITES:
        assert torch.equal(first[site], layers[0][1][site])
    other = video_workload(**(TINY | {"seed": 1}))
    assert not np.array_equal(other.video(), video)


def _frame_cos(x, f, hw):
    """Median cosine between the tokens of frame f and f+1 at the same position."""
    return (
        F.cosine_similarity(
            x[f * hw : (f + 1) * hw].float(), x[(f + 1) * hw : (f + 2) * hw].float(), dim=1
        )
        .median()
        .item()
    )


def test_redundancy(tiny):
    wl, video, embed, layers = tiny
    hw = 42
    # pixels: the still clip changes only by noise and the moving disk
    still = np.mean(np.abs(video[1] - video[0]) < 0.05)
    cut = np.mean(np.abs(video[4] - video[3]) < 0.05)
    assert still > 0.85 and cut < 0.4
    for x in [embed] + [inputs[s] for _, inputs in layers for s in SITES]:
        static = [_frame_cos(x, f, hw) for f in (0, 1, 2)]
        pan = [_frame_cos(x, f, hw) for f in (4, 5, 6)]
        across = _frame_cos(x, 3, hw)
        assert min(static) > 0.97
        assert across < 0.7
        assert across < min(pan) < min(static)


def test_sic_finds_the_redundancy(tiny):
    from focus_algo.sic import similarity_concentrate

    wl, _, _, layers = tiny
    x = layers[0][1]["q_proj"]
    s = similarity_concentrate(x, wl.shape.grid).sparsity
    # the same tokens with frames in shuffled order lose their temporal reuse
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    shuffled = x.view(8, 42, -1)[perm].reshape(336, -1)
    assert s > 0.4
    assert similarity_concentrate(shuffled, wl.shape.grid).sparsity < s - 0.1


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("frames", 0, "frames=0"),
        ("heads", 5, "heads=5"),
        ("dtype", "int8", "dtype"),
        ("noise", -1.0, "noise"),
        ("kv_groups", 4, "kv_groups=4"),
    ],
)
def test_workload_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        video_workload(**{field: value})


def test_video_needs_a_full_grid():
    shape = sim.Workload(
        name="w",
        hidden=64,
        heads=4,
        kv_heads=2,
        head_dim=16,
        ffn=96,
        layers=1,
        tokens=300,
        frames=8,
        height=6,
        width=7,
    )
    with pytest.raises(ValueError, match="tokens=300"):
        VideoWorkload(shape)
    with pytest.raises(ValueError, match="head_dim"):
        VideoWorkload(
            sim.Workload(
                name="w",
                hidden=64,
                heads=4,
                kv_heads=2,
                head_dim=8,
                ffn=96,
                layers=1,
                tokens=4,
                frames=4,
            )
        )


# -- CLI ----------------------------------------------------------------------------

CLI_TINY = [
    "--frames",
    "4",
    "--height",
    "3",
    "--width",
    "4",
    "--hidden",
    "64",
    "--ffn",
    "80",
    "--heads",
    "4",
    "--kv-groups",
    "2",
    "--layers",
    "2",
    "--clip-len",
    "2",
]


def test_run_writes_consistent_outputs(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        main, ["run", *CLI_TINY, "--vector-size", "16", "--threshold", "0.85", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} == {
        "trace.safetensors",
        "summary.csv",
        "params.json",
        "sparsity.png",
    }
    params = FocusParams.load(out / "params.json")
    assert params == FocusParams(vector_size=16, threshold=0.85)
    trace = SparseTrace.load(out / "trace.safetensors")
    assert trace.meta.params == params
    assert (trace.meta.num_tokens, trace.meta.frames, trace.meta.num_layers) == (48, 4, 2)
    assert trace.sites["q_proj"].num_vectors == 4 and trace.sites["down_proj"].num_vectors == 5
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == len(SITES) * 2
    for row in summary.itertuples():
        assert row.sparsity == pytest.approx(trace.sparsity(row.site, row.layer))
        assert row.zero + row.similar == pytest.approx(row.sparsity)
    weights = video_workload(
        frames=4, height=3, width=4, hidden=64, ffn=80, heads=4, kv_groups=2
    ).shape.weight_sizes()
    want = sum(weights[r.site] * r.sparsity for r in summary.itertuples()) / sum(
        weights[r.site] for r in summary.itertuples()
    )
    assert f"weighted average (weights = GEMM weight sizes): {want:.3f}" in res.output
    assert (out / "sparsity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the predicted speedup is the performance model's on this very trace
    shape = sim.Workload(
        name="w",
        hidden=64,
        heads=4,
        kv_heads=2,
        head_dim=16,
        ffn=80,
        layers=2,
        tokens=48,
        frames=4,
        height=3,
        width=4,
    )
    totals = sim.simulate(shape, trace.meta.params, "focus", trace).totals
    focus_row = next(line for line in res.output.splitlines() if line.startswith("focus "))
    assert float(focus_row.split()[4]) == pytest.approx(totals.speedup, rel=1e-3)
    # GEMMs this small (K = 64) leave the SIC about one cycle per vector: it stalls.
    assert totals.sic_stall_cycles > 0
    # the same run again gives the same trace (deterministic workload)
    res2 = CliRunner().invoke(
        main,
        [
            "run",
            *CLI_TINY,
            "--vector-size",
            "16",
            "--threshold",
            "0.85",
            "--out",
            str(tmp_path / "again"),
        ],
    )
    assert res2.exit_code == 0
    again = SparseTrace.load(tmp_path / "again" / "trace.safetensors")
    for site in SITES:
        np.testing.assert_array_equal(again.sites[site].root, trace.sites[site].root)


def test_run_with_params_file_and_block_override(tmp_path):
    pfile = tmp_path / "p.toml"
    FocusParams(vector_size=8, m_tile=16).save(pfile)
    out = tmp_path / "run"
    res = CliRunner().invoke(
        main,
        [
            "run",
            *CLI_TINY,
            "--layers",
            "1",
            "--params",
            str(pfile),
            "--block-frames",
            "1",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    params = FocusParams.load(out / "params.json")
    assert params == FocusParams(vector_size=8, m_tile=16, block_frames=1)
    assert SparseTrace.load(out / "trace.safetensors").sites["query"].num_vectors == 8


@pytest.mark.parametrize(
    "content, name, field",
    [
        ('{"threshold": 5.0}', "bad.json", "threshold"),
        ('{"vector_sise": 16}', "bad.json", "vector_sise"),
        ('threshold = "high"', "bad.toml", "threshold"),
        ('{"threshold": 0.9', "broken.json", "broken.json"),
    ],
)
def test_bad_params_file(tmp_path, content, name, field):
    pfile = tmp_path / name
    pfile.write_text(content)
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", *CLI_TINY, "--params", str(pfile), "--out", str(out)])
    assert res.exit_code != 0
    assert field in res.output and "--params" in res.output
    assert not out.exists()


@pytest.mark.parametrize(
    "args, match",
    [
        (["--vector-size", "3"], "vector_size"),
        (["--threshold", "1.5"], "threshold"),
        (["--heads", "5"], "--heads=5"),
        (["--params", "missing.json"], "missing.json"),
    ],
)
def test_bad_options(tmp_path, args, match):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", *CLI_TINY, *args, "--out", str(out)])
    assert res.exit_code == 2
    assert match in res.output
    assert not out.exists()


def test_golden_command(tmp_path):
    res = CliRunner().invoke(main, ["golden", "--out", str(tmp_path / "g"), "--seed", "1"])
    assert res.exit_code == 0, res.output
    index = json.loads((tmp_path / "g" / "index.json").read_text())
    assert index["seed"] == 1 and "compressed_gemm.npz" in index["files"]
    for name in index["files"]:
        assert (tmp_path / "g" / name).is_file()


def test_python_m_entry_point():
    res = subprocess.run(
        [sys.executable, "-m", "focus_algo", "--help"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0
    assert "Usage: focus" in res.stdout and "run" in res.stdout and "golden" in res.stdout
