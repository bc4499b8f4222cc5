"""Conventions of the three command-line tools: ``--help`` imports nothing
heavy, every ``--params`` comes with per-field overrides, bad input exits 2
with one error line naming the option, and no help text holds an absolute path."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from focus_algo.cli import main as focus
from focus_hw import FocusParams
from focus_hw.cli import main as focus_hw
from focus_hw.cli_types import ParamsFile, option_name
from sim.cli import main as focus_sim

CLIS = {"focus": focus, "focus-hw": focus_hw, "focus-sim": focus_sim}
#: Modules ``--help`` must not import: torch and transformers (seconds), and
#: the others that made it slow.
HEAVY = {"torch", "transformers", "accelerate", "pandas", "amaranth", "ml_dtypes", "matplotlib"}
HEAVY |= {"dask", "av", "skimage", "safetensors"}
FIELDS = [f.name for f in dataclasses.fields(FocusParams)]


#: (tool, subcommand, command) of every command taking --params.
WITH_PARAMS = [
    (prog, name, cmd)
    for prog, group in CLIS.items()
    for name, cmd in group.commands.items()
    if any(isinstance(p.type, ParamsFile) for p in cmd.params)
]


@pytest.mark.parametrize("prog", list(CLIS))
def test_help_imports_nothing_heavy(prog):
    """``--help`` of the tool and of each subcommand, in a fresh interpreter."""
    module = CLIS[prog].callback.__module__
    code = (
        f"import sys; from {module} import main\n"
        f"for args in [['--help']] + [[n, '--help'] for n in main.commands]:\n"
        f"    assert main(args, prog_name={prog!r}, standalone_mode=False) == 0, args\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(HEAVY)!r})))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "[]"
    assert f"Usage: {prog} [OPTIONS] COMMAND" in res.stdout


def test_every_params_command_listed():
    assert {f"{prog} {name}" for prog, name, _ in WITH_PARAMS} == {
        "focus run",
        "focus flow",
        "focus golden",
        "focus eval",
        "focus-hw generate",
        "focus-hw sweep",
        "focus-hw synth",
        "focus-hw fpga",
        "focus-sim run",
    }


@pytest.mark.parametrize("prog, name, cmd", WITH_PARAMS)
def test_params_come_with_field_overrides(prog, name, cmd):
    """Every FocusParams field is an option (``focus eval``'s --dtype is the
    model's dtype: FocusParams.dtype comes from --params there)."""
    assert not {option_name(f) for f in FIELDS} - {o for p in cmd.params for o in p.opts}


@pytest.mark.parametrize(
    "prog, name", [(prog, name) for prog, group in CLIS.items() for name in group.commands]
)
def test_no_absolute_path_in_help(prog, name, monkeypatch, tmp_path):
    """Help text and defaults (what docs/cli.rst renders) hold no absolute
    path of the machine that built them: not the checkout, home or cwd."""
    monkeypatch.chdir(tmp_path)
    cmd = CLIS[prog].commands[name]
    text = cmd.get_help(click.Context(cmd, info_name=name))
    for root in (Path(__file__).resolve().parent.parent, Path.home(), tmp_path):
        assert str(root) not in text, (root, text)
    for param in cmd.params:
        default = param.get_default(click.Context(cmd), call=True)
        assert not Path(str(default or "")).is_absolute(), (param.name, default)


# -- bad input: exit 2, one error line naming the option ------------------------------

TINY = ["--frames", "2", "--height", "2", "--width", "2", "--hidden", "16", "--ffn", "16"]
TINY += ["--heads", "2", "--kv-groups", "1", "--layers", "1"]
EVAL = ["--checkpoint", ".", "--dataset", "{file}", "--out", "o"]


@pytest.mark.parametrize(
    "prog, args, says",
    [
        ("focus", ["run", *TINY, "--frames", "0"], "'--frames': 0 is not in the range x>=1"),
        ("focus", ["run", *TINY, "--seed", "-1"], "'--seed': -1 is not in the range x>=0"),
        ("focus", ["run", *TINY, "--threshold", "nan"], "--threshold: FocusParams.threshold=nan"),
        ("focus", ["run", *TINY, "--m-tile", "x"], "--m-tile: cannot read 'x' as int"),
        ("focus", ["run", *TINY, "--heads", "3"], "--heads=3: must divide hidden=16"),
        ("focus", ["run", *TINY, "--video", "{missing}"], "'--video': Path"),
        ("focus", ["run", *TINY, "--out", "{file}/sub"], "'--out': cannot create"),
        ("focus", ["golden", "--seed", "-2"], "'--seed': -2 is not in the range x>=0"),
        ("focus", ["golden", "--dtype", "fp64"], "--dtype: FocusParams.dtype='fp64'"),
        ("focus", ["flow", "--rows", "-1"], "--rows: FocusParams.rows=-1"),
        ("focus", ["flow", "--units", "gpu"], "--units gpu: choose from"),
        ("focus", ["flow", "--cache-dir", "{file}"], "'--cache-dir': Directory"),
        ("focus", ["eval", *EVAL, "--checkpoint", "{missing}"], "'--checkpoint': Directory"),
        ("focus", ["eval", *EVAL], "--dataset: "),
        ("focus", ["eval", *EVAL, "--dataset", "{missing}"], "'--dataset': File"),
        ("focus", ["eval", *EVAL, "--limit", "0"], "'--limit': 0 is not in the range"),
        ("focus", ["eval", *EVAL, "--focus-config", "{file}"], "--focus-config: "),
        ("focus-hw", ["generate", "--out", "o", "--unit", "gpu"], "--unit: 'gpu': choose from"),
        ("focus-hw", ["generate", "--out", "o", "--unit", "focus", "--rows", "8"], "must be equal"),
        ("focus-hw", ["generate", "--out", "o", "--sec-keep", "x"], "--sec-keep: cannot read"),
        ("focus-hw", ["generate", "--out", "{file}/o"], "'--out': cannot create"),
        ("focus-hw", ["sweep", "--out", "o", "--rows", ","], "--rows: ',' holds no values"),
        ("focus-hw", ["sweep", "--out", "o", "--jobs", "0"], "'--jobs': 0 is not in the range"),
        ("focus-hw", ["synth", "--unit", "focus", "--cols", "8"], "must be equal"),
        ("focus-hw", ["synth", "--fpga", "vivado"], "'--fpga': 'vivado' is not one of"),
        ("focus-hw", ["fpga", "--board", "ulx3s-85f", "--tiles", "0"], "'--tiles'"),
        ("focus-sim", ["run", "--rows", "-3"], "--rows: FocusParams.rows=-3"),
        ("focus-sim", ["run", "--csv", "{file}/x.csv"], "'--csv': cannot create"),
        ("focus-sim", ["run", "--clock-mhz", "9", "--clock-from-fpga", "{file}"], "not both"),
        ("focus-sim", ["reproduce", "--out", "{file}"], "'--out': Directory"),
        ("focus-sim", ["sweep", "--out", "o", "--workload", "x/y"], "--workload: no paper"),
    ],
)
def test_bad_input_exits_2_naming_the_option(tmp_path, monkeypatch, prog, args, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("{}\n")
    args = [a.format(missing=tmp_path / "none.mp4", file=tmp_path / "f") for a in args]
    res = CliRunner().invoke(CLIS[prog], args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    errors = [line for line in res.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and says in errors[0], res.output
    assert res.output.rstrip("\n").splitlines()[-1] == errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # nothing written
