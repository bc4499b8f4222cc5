"""Random, corrupted and truncated input to every loader and to the CLIs'
``--params``: each raises its named error (a CLI exits with code 2 and one
error line, no traceback), never another exception, and writes nothing.

Examples per test: ``examples(n)`` is ``n`` under the "ci" hypothesis
profile (max_examples=100) and scales with the profile ("slow": 20x).
"""

import dataclasses
import json
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import safetensors.numpy
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from focus_algo.eval import DatasetError, load_dataset
from focus_algo.golden import (
    GoldenError,
    gemm_golden,
    load_golden,
    mac_golden,
    sic_golden,
    write_golden,
)
from focus_algo.trace import SparseTrace, TraceError, TraceMeta
from focus_hw import FocusParams


def examples(n: int) -> int:
    """``n`` examples under the "ci" profile, scaled by the loaded profile."""
    return max(1, n * settings().max_examples // 100)


def fuzz(n: int):
    return settings(
        max_examples=examples(n),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


FIELDS = [f.name for f in dataclasses.fields(FocusParams)]
VALID = FocusParams(sec_layers=(1, 2), sec_keep=(0.5, 0.25), vector_size=8)

leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.dates()
    | st.datetimes()
    | st.times()
)  # TOML also yields dates and times
json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)


def nested(base):
    return st.recursive(
        base,
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
        max_leaves=10,
    )


def corrupted(data: bytes):
    """``data`` truncated, or with 1-4 bytes replaced."""
    truncated = st.integers(0, len(data) - 1).map(lambda n: data[:n])
    flips = st.lists(
        st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)), min_size=1, max_size=4
    )

    def flip(changes):
        b = bytearray(data)
        for i, x in changes:
            b[i] ^= x
        return bytes(b)

    return truncated | flips.map(flip)


def one_line(e: Exception) -> str:
    msg = str(e)
    assert msg and "\n" not in msg, repr(msg)
    return msg


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# -- FocusParams ---------------------------------------------------------------------


@fuzz(300)
@given(
    data=nested(leaves)
    | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), nested(leaves), max_size=6)
)
def test_params_from_dict_any_shape(data):
    try:
        p = FocusParams.from_dict(data)
    except ValueError as e:
        assert type(e) is ValueError
        assert re.match(r"FocusParams(\.\w+=|: )", one_line(e))
    else:
        assert FocusParams.from_dict(p.to_dict()) == p


@fuzz(300)
@given(field=st.sampled_from(FIELDS), value=nested(leaves))
def test_params_from_dict_one_bad_field_is_named(field, value):
    data = {**VALID.to_dict(), field: value}
    try:
        p = FocusParams.from_dict(data)
    except ValueError as e:
        assert type(e) is ValueError and field in one_line(e)
    else:
        assert getattr(p, field) == (tuple(value) if isinstance(value, list) else value)


def params_files():
    valid_json, valid_toml = VALID.to_json().encode(), VALID.to_toml().encode()
    text = (
        st.binary(max_size=200)
        | nested(json_leaves).map(lambda v: json.dumps(v).encode())
        | st.text(max_size=60).map(str.encode)
    )
    return st.one_of(
        st.tuples(st.just(".json"), text | corrupted(valid_json)),
        st.tuples(st.just(".toml"), text | corrupted(valid_toml)),
    )


@fuzz(300)
@given(file=params_files())
def test_params_load_corrupt_files(scratch, file):
    suffix, data = file
    path = scratch / f"p{suffix}"
    path.write_bytes(data)
    try:
        FocusParams.load(path)
    except ValueError as e:
        assert type(e) is ValueError
        assert re.match(r"FocusParams(\.\w+=|: )", one_line(e))
    assert path.read_bytes() == data


@pytest.mark.parametrize(
    "suffix, deep, bad_utf8, at",
    [
        (".json", b"[" * 100_000, b'{"rows": "\xff"}', 10),
        (".toml", b"x = " + b"[" * 100_000, b'rows = "\xff"', 8),
    ],
)
def test_params_load_named_errors(tmp_path, suffix, deep, bad_utf8, at):
    """Nesting past the parser's recursion limit, invalid UTF-8 (the byte
    offset named), a top level that is not a table."""
    path = tmp_path / f"p{suffix}"
    path.write_bytes(deep)
    with pytest.raises(ValueError, match=f"FocusParams: not valid {suffix[1:].upper()}"):
        FocusParams.load(path)
    path.write_bytes(bad_utf8)
    with pytest.raises(ValueError, match=rf"not UTF-8 text \(invalid start byte at byte {at}\)"):
        FocusParams.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(
        ValueError, match="FocusParams: (expected a table of fields, got list|not valid TOML)"
    ):
        FocusParams.load(path)


# -- traces --------------------------------------------------------------------------


def _trace() -> SparseTrace:
    """A valid 2-site, 2-layer trace of 6 tokens (2x1x3 grid)."""
    rng = np.random.default_rng(0)
    meta = TraceMeta(
        model="m",
        dataset="d",
        num_tokens=6,
        frames=2,
        height=1,
        width=3,
        num_layers=2,
        params=VALID,
        extra={"k": [1, 2]},
    )
    results = {}
    for site, v in (("q_proj", 3), ("down_proj", 9)):
        layers = []
        for _ in range(2):
            zero = rng.random((6, v)) < 0.3
            similar = np.zeros((6, v), bool)
            similar[3:] = ~zero[3:] & ~zero[:3] & (rng.random((3, v)) < 0.5)
            root = np.where(similar, np.arange(6)[:, None] - 3, np.arange(6)[:, None])
            layers.append(SimpleNamespace(zero=zero, similar=similar, root=root))
        results[site] = layers
    return SparseTrace.from_results(meta, results)


TRACE_OBJECT = _trace()
TRACE = TRACE_OBJECT.to_bytes()


def load_trace(scratch, data: bytes):
    path = scratch / "t.safetensors"
    path.write_bytes(data)
    return SparseTrace.load(path), path


@fuzz(300)
@given(data=corrupted(TRACE) | st.binary(max_size=300))
def test_trace_corrupt_bytes(scratch, data):
    try:
        trace, _ = load_trace(scratch, data)
    except TraceError as e:
        assert one_line(e).startswith(str(scratch / "t.safetensors"))
    else:  # a flip in a free-text byte (model name, JSON spacing) may leave it valid
        trace.validate()


@fuzz(100)
@given(n=st.integers(0, len(TRACE) - 1))
def test_trace_truncated_always_fails(scratch, n):
    with pytest.raises(TraceError, match="t.safetensors: "):
        load_trace(scratch, TRACE[:n])


META_FIELDS = [
    "model",
    "dataset",
    "num_tokens",
    "frames",
    "height",
    "width",
    "num_layers",
    "params",
    "extra",
]


@fuzz(200)
@given(key=st.sampled_from(META_FIELDS + ["vectors", "other"]), value=nested(json_leaves))
def test_trace_metadata_fields(scratch, key, value):
    """The JSON metadata is rewritten whole (valid safetensors), one field
    replaced by random JSON: a TraceError (naming a count field of the wrong
    type), or the trace when the value happens to be valid."""
    tensors = safetensors.numpy.load(TRACE)
    meta = TRACE_OBJECT.meta.to_dict()
    vectors = {"q_proj": 3, "down_proj": 9}
    if key == "vectors":
        vectors = value
    else:
        meta[key] = value
    header = {
        "format": "focus-trace",
        "version": "1",
        "meta": json.dumps(meta),
        "vectors": json.dumps(vectors),
    }
    try:
        load_trace(scratch, safetensors.numpy.save(tensors, metadata=header))
    except TraceError as e:
        assert one_line(e).startswith(str(scratch / "t.safetensors"))
        count = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if key in META_FIELDS[2:7] and not count:  # a count of the wrong type
            assert f"meta field {key!r} must be an integer >= 0" in str(e)
    else:
        original = TRACE_OBJECT.meta.to_dict().get(key)
        assert key in ("model", "dataset", "extra", "params") or (
            value == original and type(value) is type(original)
        )


def test_trace_reference_round_trip(scratch):
    trace, _ = load_trace(scratch, TRACE)
    assert trace.meta == TRACE_OBJECT.meta and trace.meta.params == VALID
    assert list(trace.sites) == ["q_proj", "down_proj"]
    for site, want in TRACE_OBJECT.sites.items():
        for kind in ("zero", "similar", "root"):
            np.testing.assert_array_equal(getattr(trace.sites[site], kind), getattr(want, kind))


# -- golden files --------------------------------------------------------------------

GOLDEN_PARAMS = FocusParams(rows=4, cols=4, vector_size=8, dtype="bf16")


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """A pristine golden folder and a scratch copy that tests corrupt."""
    good = tmp_path_factory.mktemp("golden")
    write_golden(good, GOLDEN_PARAMS, gemm_shape=(2, 9, 3), grid=(2, 2, 2), n=3, mac_count=8)
    work = tmp_path_factory.mktemp("golden-work")
    shutil.copytree(good, work, dirs_exist_ok=True)
    return good, work


def load_corrupted_golden(golden, name: str, data: bytes):
    """load_golden of the scratch folder with ``name`` replaced by ``data``."""
    good, work = golden
    (work / name).write_bytes(data)
    try:
        return load_golden(work)
    finally:
        (work / name).write_bytes((good / name).read_bytes())
        assert sorted(p.name for p in work.iterdir()) == sorted(p.name for p in good.iterdir())


def test_golden_round_trip(golden):
    """load_golden returns the generators' arrays (independent of the files)."""
    index, sets = load_golden(golden[0])
    assert index["params"] == GOLDEN_PARAMS.to_dict()
    assert sorted(sets) == ["compressed_gemm", "gemm", "gemm_acc", "mac", "sic"]
    for name, want in (
        ("mac", mac_golden(GOLDEN_PARAMS, 8)),
        ("gemm", gemm_golden(GOLDEN_PARAMS, 2, 9, 3)),
        ("sic", sic_golden(GOLDEN_PARAMS, (2, 2, 2))),
    ):
        assert sets[name].keys() == want.keys()
        for k, v in want.items():
            assert sets[name][k].dtype == v.dtype
            np.testing.assert_array_equal(sets[name][k], v)


GOLDEN_FILES = ["index.json", "mac.npz", "gemm.npz", "sic.npz"]


@fuzz(300)
@given(data=st.data())
def test_golden_corrupt_files(golden, data):
    name = data.draw(st.sampled_from(GOLDEN_FILES))
    blob = data.draw(corrupted((golden[0] / name).read_bytes()) | st.binary(max_size=200))
    try:
        load_corrupted_golden(golden, name, blob)
    except GoldenError as e:
        assert str(golden[1]) in one_line(e)


@fuzz(100)
@given(data=st.data())
def test_golden_truncated_always_fails(golden, data):
    name = data.draw(st.sampled_from(GOLDEN_FILES))
    blob = (golden[0] / name).read_bytes()
    n = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(GoldenError, match=re.escape(name) if name != "index.json" else "index"):
        load_corrupted_golden(golden, name, blob[:n])


@fuzz(200)
@given(
    key=st.sampled_from(["format", "version", "params", "dtype", "files", "seed"]),
    value=nested(json_leaves),
)
def test_golden_index_fields(golden, key, value):
    index = json.loads((golden[0] / "index.json").read_text())
    original, index[key] = index[key], value
    try:
        load_corrupted_golden(golden, "index.json", json.dumps(index).encode())
    except GoldenError as e:
        assert one_line(e).startswith(str(golden[1]))
    else:  # seed is the one field the loader does not check
        assert key == "seed" or (value == original and type(value) is type(original))


# -- JSONL datasets ------------------------------------------------------------------

ROW_KEYS = ["id", "video", "image", "question", "options", "answer"]
GOOD_ROW = {
    "id": "a",
    "video": "v.npy",
    "question": "Which?",
    "options": ["A. x", "B. y"],
    "answer": "B",
}
GOOD_JSONL = (json.dumps(GOOD_ROW) + "\n" + json.dumps({**GOOD_ROW, "id": 7}) + "\n").encode()

rows = (
    nested(json_leaves)
    | st.dictionaries(
        st.sampled_from(ROW_KEYS) | st.text(max_size=4), nested(json_leaves), max_size=7
    )
    | st.builds(lambda k, v: {**GOOD_ROW, k: v}, st.sampled_from(ROW_KEYS), nested(json_leaves))
)
jsonl = (
    st.lists(rows, max_size=4).map(lambda rs: "".join(json.dumps(r) + "\n" for r in rs).encode())
    | corrupted(GOOD_JSONL)
    | st.binary(max_size=200)
)


@fuzz(300)
@given(data=jsonl)
def test_dataset_any_rows(scratch, data):
    path = scratch / "d.jsonl"
    path.write_bytes(data)
    try:
        samples = load_dataset(path)
    except DatasetError as e:
        assert one_line(e).startswith(f"{path} line ") or "holds no rows" in str(e)
    else:
        for s in samples:
            assert isinstance(s.id, str) and s.answer in s.letters and len(s.options) >= 2
            assert s.kind in ("video", "image") and s.media.is_absolute()


def test_dataset_named_errors(tmp_path):
    path = tmp_path / "d.jsonl"
    for data, msg in [
        (GOOD_JSONL + b'{"id": "\xff"}\n', "line 3: not UTF-8 text"),
        (GOOD_JSONL + b"[" * 100_000 + b"\n", "line 3: not valid JSON"),
        (GOOD_JSONL + b'{"id": ' + b"9" * 5000 + b"}\n", "line 3: not valid JSON"),
        (
            json.dumps({**GOOD_ROW, "video": "a\x00b"}).encode(),
            "line 1: field 'video' is not a usable path",
        ),
    ]:
        path.write_bytes(data)
        with pytest.raises(DatasetError, match=msg):
            load_dataset(path)


# -- --params of every CLI -----------------------------------------------------------


def _clis():
    from focus_algo.cli import main as focus
    from focus_hw.cli import main as focus_hw
    from sim.cli import main as focus_sim

    return {
        "focus run": (focus, ["run"], True),
        "focus golden": (focus, ["golden"], True),
        "focus eval": (focus, ["eval"], True),
        "focus-hw generate": (focus_hw, ["generate"], True),
        "focus-sim run": (focus_sim, ["run"], False),
    }


CLIS = _clis()


@pytest.mark.parametrize("cli", list(CLIS))
@fuzz(40)
@given(file=params_files())
def test_cli_params_file_exit_2(scratch, cli, file):
    """A --params file the loader rejects: exit code 2, one error line naming
    --params and the file, no traceback, no output folder."""
    suffix, data = file
    path = scratch / f"cli{suffix}"
    path.write_bytes(data)
    try:
        FocusParams.load(path)
        assume(False)  # a valid file would run the command
    except ValueError as e:
        reason = str(e)
    group, args, has_out = CLIS[cli]
    out = scratch / "cli-out"
    args = [*args, "--params", str(path)] + (["--out", str(out)] if has_out else [])
    if cli == "focus eval":
        args += ["--checkpoint", str(scratch / "ckpt"), "--dataset", str(scratch / "d.jsonl")]
    res = CliRunner().invoke(group, args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    errors = [line for line in res.stderr.splitlines() if line.startswith("Error")]
    assert errors == [f"Error: Invalid value for '--params': {path}: {reason}"]
    assert res.stderr.rstrip("\n").splitlines()[-1] == errors[0]
    assert not out.exists()


# -- focus-sim's options ---------------------------------------------------------------

#: Text that a command line can carry: no NUL, no lone surrogates beyond
#: surrogateescape's; names are kept short (a path component <= 255 bytes).
argv_text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
odd_numbers = (
    st.integers(-5, 300).map(str)
    | st.floats().map(str)
    | st.sampled_from(["", " ", "1e400", "-0", "0x10", "1_000", "nan", "inf"])
    | argv_text.filter(lambda t: len(t) < 12)
)
#: Bad or odd FocusParams field values: unparsable, out of range, or the
#: default (so a valid run stays the cheap one).
field_values = st.sampled_from(FIELDS).flatmap(
    lambda f: st.tuples(
        st.just(f),
        odd_numbers.filter(lambda t: t.strip() not in ("1", "2", "3", "4"))
        | st.just(str(getattr(FocusParams(), f))).map(lambda t: t.strip("()").replace(" ", "")),
    )
)
names = argv_text.filter(lambda t: 0 < len(t) < 20 and "/" not in t and t not in (".", ".."))
file_bytes = st.binary(max_size=200) | corrupted(VALID.to_json().encode())


def _sim_run_args(draw, scratch):
    from sim.tech import MACHINES

    args = ["run", "--machine", "dense"]  # the quick machine unless one is drawn
    for option in draw(
        st.lists(
            st.sampled_from(
                ["--workload", "--tokens", "--frames", "--machine", "--sparsity", "--csv"]
                + ["--config", "--trace", "--params", "--clock-from-fpga", "field"]
            ),
            min_size=1,
            max_size=4,
            unique=True,
        )
    ):
        if option == "field":
            field, value = draw(field_values)
            args += [f"--{field.replace('_', '-')}", value]
        elif option == "--workload":
            args += [option, draw(argv_text | st.sampled_from(["minicpm_v/mvbench", "a/b", "/"]))]
        elif option == "--machine":
            args += [option, draw(st.sampled_from(MACHINES) | argv_text)]
        elif option == "--csv":
            args += [option, str(scratch / "csv" / draw(names))]
        elif option in ("--config", "--trace", "--params", "--clock-from-fpga"):
            path = scratch / f"sim{option}{draw(st.sampled_from(['.json', '.toml', '']))}"
            path.write_bytes(draw(file_bytes))
            args += [option, str(path)]
        else:
            args += [option, draw(odd_numbers)]
    return args


@fuzz(60)
@given(data=st.data())
def test_focus_sim_odd_options_exit_0_or_2(scratch, data):
    """Random, bad or odd values of focus-sim's options (run's, and sweep's
    that fail before any work): exit 0 or 2 with one error line, never a traceback."""
    from sim.cli import main as focus_sim
    from sim.workload import paper_workloads

    if data.draw(st.booleans()):
        args = _sim_run_args(data.draw, scratch)
    else:
        known = {w.name for w in paper_workloads()}
        workload = data.draw(argv_text.filter(lambda t: t not in known))
        args = ["sweep", "--out", str(scratch / "sweep"), "--workload", workload, "--quick"]
        pool = data.draw(st.sampled_from([None, "--jobs", "--workers"]))
        if pool:
            args += [pool, data.draw(odd_numbers.filter(lambda t: not t.strip().isdigit()))]
    res = CliRunner().invoke(focus_sim, args)
    event(f"{args[0]}: exit {res.exit_code}")
    assert res.exit_code in (0, 2), (args, res.output)
    assert "Traceback" not in res.output and not isinstance(res.exception, Exception), args
    if res.exit_code == 2:
        errors = [line for line in res.output.splitlines() if line.startswith("Error")]
        assert len(errors) == 1, (args, res.output)
