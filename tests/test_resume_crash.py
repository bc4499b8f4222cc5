"""focus eval survives SIGKILL: the rerun finishes the samples, leaves whole
files only, and ends with the summary of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from focus_algo.eval.cli import eval_command
from focus_algo.eval.runner import COLUMNS
from focus_hw import FocusParams
from test_eval import base_args, build_checkpoint, image_dataset

SAMPLES = 8
METHODS = ["dense", "focus", "cmc", "adaptiv"]
#: Columns that do not depend on the machine's speed.
STABLE = [
    "samples",
    "errors",
    "accuracy",
    "sparsity",
    "visual_tokens",
    "visual_kept",
    "kl_last",
    "top1_agree",
    "agree_dense",
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the killed subprocess: same float results
    folder = tmp_path_factory.mktemp("crash")
    checkpoint = build_checkpoint(folder / "ckpt")
    (folder / "data").mkdir()
    dataset = image_dataset(folder / "data", n=SAMPLES)
    params = folder / "params.json"
    FocusParams(sec_layers=(1, 2), sec_keep=(0.5, 0.25), vector_size=8).save(params)
    yield folder, checkpoint, dataset, params
    torch.set_num_threads(threads)


def run(args):
    res = CliRunner().invoke(eval_command, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output


def finished(path: Path) -> int:
    """Samples with all their rows in ``path`` (0 while it does not exist)."""
    if not path.is_file():
        return 0
    rows = pd.read_csv(path)  # atomic rewrites: always parses
    return int((rows.groupby("id").size() == len(METHODS)).sum())


def assert_whole(out: Path) -> pd.DataFrame:
    """Every output parses, no temp file is left; returns samples.csv."""
    assert sorted(p.name for p in out.iterdir()) == [
        "samples.csv",
        "settings.json",
        "summary.csv",
        "summary.json",
        "summary.png",
    ]
    json.loads((out / "settings.json").read_text())
    json.loads((out / "summary.json").read_text())
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return pd.read_csv(out / "samples.csv", dtype={"id": str})


def kill_part_way(args, out: Path) -> int:
    """Start ``focus eval`` in a subprocess, SIGKILL it once samples.csv holds
    some but not all samples; returns how many it held."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "focus_algo", "eval", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while (done := finished(out / "samples.csv")) < 1:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no sample finished in 300 s"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert done < SAMPLES, "the run finished before it could be killed"
    return done


def test_sigkill_then_rerun_equals_uninterrupted(setup):
    folder, checkpoint, dataset, params = setup
    ref_out, out = folder / "ref", folder / "killed"
    run([str(a) for a in base_args(checkpoint, dataset, ref_out, params)])
    reference = assert_whole(ref_out)

    args = [str(a) for a in base_args(checkpoint, dataset, out, params)]
    done = kill_part_way(args, out)
    assert 1 <= done < SAMPLES
    assert not (out / "summary.csv").exists()
    run(args)
    samples = assert_whole(out)

    keys = sorted((f"s{i}", m) for i in range(SAMPLES) for m in METHODS)
    assert sorted(zip(samples["id"], samples["method"])) == keys  # each exactly once
    assert samples["error"].isna().all()
    exact = [c for c in COLUMNS if c not in ("id", "method", "wall_s", "kl_last")]
    a = samples.set_index(["id", "method"]).sort_index()
    b = reference.set_index(["id", "method"]).sort_index()
    pd.testing.assert_frame_equal(a[exact], b[exact])
    assert a["kl_last"].to_numpy() == pytest.approx(b["kl_last"].to_numpy(), rel=1e-6, abs=1e-9)

    got, want = (pd.read_csv(o / "summary.csv").set_index("method") for o in (out, ref_out))
    assert got.index.tolist() == want.index.tolist() == METHODS
    pd.testing.assert_frame_equal(got[STABLE], want[STABLE], rtol=1e-6)
    got, want = (
        pd.DataFrame(json.loads((o / "summary.json").read_text())).set_index("method")
        for o in (out, ref_out)
    )
    pd.testing.assert_frame_equal(got[STABLE], want[STABLE], rtol=1e-6)


def test_torn_row_and_stale_temp_are_cleaned_on_resume(setup):
    """What a kill during a non-atomic write would leave: samples.csv cut
    inside its last row and a temp file of an interrupted atomic write. The
    rerun drops the torn row (reruns that sample) and deletes the temp file."""
    folder, checkpoint, dataset, params = setup
    out = folder / "torn"
    args = [str(a) for a in base_args(checkpoint, dataset, out, params)] + [
        "--methods",
        "dense,cmc",
        "--limit",
        "3",
    ]
    run(args)
    full = pd.read_csv(out / "samples.csv", dtype={"id": str})
    text = (out / "samples.csv").read_text()
    lines = text.splitlines(keepends=True)
    assert len(lines) == 1 + 6
    last = lines[-1]
    (out / "samples.csv").write_text("".join(lines[:-1]) + last[: len(last) // 2])
    (out / ".samples.csv.k1ll3d_x").write_text(text[:40])
    (out / ".summary.json.abc12345").write_text("{")
    (out / "summary.csv").unlink()
    run(args)
    again = pd.read_csv(out / "samples.csv", dtype={"id": str})
    assert sorted(p.name for p in out.iterdir()) == [
        "samples.csv",
        "settings.json",
        "summary.csv",
        "summary.json",
        "summary.png",
    ]
    assert len(again) == 6 and not again.duplicated(["id", "method"]).any()
    cols = ["id", "method", "prediction", "correct", "sparsity", "option_logprobs"]
    pd.testing.assert_frame_equal(again[cols], full[cols])
    assert again["error"].isna().all()
