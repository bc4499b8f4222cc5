"""The number-format registry (focus_hw.formats) against numpy and hand-computed bits."""

import ml_dtypes
import numpy as np
import pytest

from focus_hw import DTYPES, FocusParams
from focus_hw.arith import FORMATS as FLOAT_LAYOUTS
from focus_hw.formats import (
    ACC_FORMATS,
    NUMBER_FORMATS,
    OPERAND_FORMATS,
    accumulator_format,
    number_format,
    operand_format,
)

FP16, BF16, INT8 = (OPERAND_FORMATS[n] for n in ("fp16", "bf16", "int8"))


def test_operand_and_accumulator_table():
    assert sorted(OPERAND_FORMATS) == ["bf16", "fp16", "int8"]
    assert DTYPES == {"fp16": (16, 32), "bf16": (16, 32), "int8": (8, 32)}
    assert (FP16.np_type, BF16.np_type, INT8.np_type) == (np.float16, ml_dtypes.bfloat16, np.int8)
    assert FP16.acc is BF16.acc is NUMBER_FORMATS["fp32"]
    assert INT8.acc is NUMBER_FORMATS["int32"]
    assert (FP16.acc.np_type, INT8.acc.np_type) == (np.float32, np.int32)
    assert (FP16.layout.exp_bits, FP16.layout.man_bits) == (5, 10)
    assert (BF16.layout.exp_bits, BF16.layout.man_bits) == (8, 7)
    assert INT8.layout is None and INT8.acc.layout is None
    assert [f.is_float for f in (FP16, BF16, INT8)] == [True, True, False]
    assert [f.fp32_prefix for f in (FP16, BF16, INT8, FP16.acc)] == [False, True, False, False]
    for f in NUMBER_FORMATS.values():
        assert f.bits == 8 * np.dtype(f.np_type).itemsize == 8 * f.bytes
        assert np.dtype(f.bits_type) == np.dtype(f"uint{f.bits}")
        assert f.layout is None or f.layout.width == f.bits
    # the arithmetic's float layouts are the registry's
    assert FLOAT_LAYOUTS == {"fp16": FP16.layout, "bf16": BF16.layout, "fp32": FP16.acc.layout}


def test_fp16_encode_decode_match_numpy():
    rng = np.random.default_rng(0)
    v = rng.standard_normal(2000) * np.exp2(rng.integers(-30, 20, 2000))
    bits = FP16.encode(v)
    assert bits.dtype == np.uint16
    with np.errstate(over="ignore"):  # numpy's float64 -> float16 cast rounds once (RNE)
        want = v.astype(np.float16)
    np.testing.assert_array_equal(bits, want.view(np.uint16))
    np.testing.assert_array_equal(FP16.decode(bits), want)
    assert FP16.encode([1.0, -2.0, 65504.0, 1e6]).tolist() == [0x3C00, 0xC000, 0x7BFF, 0x7C00]
    # just above the half-way point 1 + 2**-11: rounds up (a float32 step would tie to 1.0)
    assert FP16.encode([1 + 2**-11 + 2**-40, 1 + 2**-11]).tolist() == [0x3C01, 0x3C00]


def test_bf16_encode_rounds_once():
    # 1 + 2**-8 is half-way between bf16 neighbours 1 and 1 + 2**-7; a tiny
    # excess must round up, which a float32 step first would lose (-> 1.0).
    assert BF16.encode([1 + 2**-8 + 2**-40, -(1 + 2**-8 + 2**-40)]).tolist() == [0x3F81, 0xBF81]
    assert BF16.encode([1 + 2**-8, 1 + 3 * 2**-8]).tolist() == [0x3F80, 0x3F82]  # ties to even
    assert BF16.decode([0x3F81]).tolist() == [1 + 2**-7]
    assert BF16.decode(np.array([0x3F81])).dtype == ml_dtypes.bfloat16


def test_int8_encode_decode():
    bits = INT8.encode([-128, -1, 0, 127])
    assert bits.dtype == np.uint8 and bits.tolist() == [128, 255, 0, 127]
    assert INT8.decode(bits).tolist() == [-128, -1, 0, 127]
    assert INT8.decode(bits).dtype == np.int8
    for bad in ([128], [-129], [1.5]):
        with pytest.raises(ValueError, match=r"int8 values must be integers in \[-128, 127\]"):
            INT8.encode(bad)


def test_lookup_errors():
    assert number_format("fp32") is NUMBER_FORMATS["fp32"] and operand_format(BF16) is BF16
    with pytest.raises(ValueError, match="unknown number format 'fp64'"):
        number_format("fp64")
    for bad in ("fp32", "fp8", ["fp16"]):
        with pytest.raises(ValueError, match="unknown operand format"):
            operand_format(bad)
    for bad in ("fp32", ["fp16"]):
        with pytest.raises(ValueError, match="FocusParams.dtype"):
            FocusParams(dtype=bad)


def test_torch_dtypes():
    import torch

    assert (FP16.torch_dtype, BF16.torch_dtype, INT8.torch_dtype) == (
        torch.float16,
        torch.bfloat16,
        torch.int8,
    )
    for f in NUMBER_FORMATS.values():
        assert torch.zeros(1, dtype=f.torch_dtype).element_size() * 8 == f.bits
        assert f.torch_dtype.is_floating_point == f.is_float


def test_params_read_the_registry():
    p = FocusParams(dtype="int8")
    assert p.format is INT8
    assert (p.operand_bits, p.acc_bits, p.operand_bytes, p.is_float) == (8, 32, 1, False)
    q = FocusParams(dtype="bf16")
    assert (q.operand_bits, q.acc_bits, q.is_float) == (16, 32, True)
    assert p.acc is INT8.acc and q.acc is BF16.acc


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_operand_accumulator(dtype):
    """acc_format="operand": the accumulator is the operand format; widths,
    bytes and the accumulator-sized buffers follow."""
    wide = FocusParams(dtype=dtype)
    p = wide.replace(acc_format="operand")
    assert p.acc is p.format is accumulator_format(dtype, "operand")
    assert accumulator_format(dtype) is wide.acc is NUMBER_FORMATS["fp32"]
    assert (p.acc_bits, p.acc_bytes) == (p.format.bits, p.format.bytes) == (16, 2)
    for name, size in wide.buffer_bytes.items():
        shrinks = name in ("concentrate_out", "output")  # the accumulator-sized ones
        assert p.buffer_bytes[name] == (size * p.acc_bytes // wide.acc_bytes if shrinks else size)


def test_accumulator_format_rejects():
    with pytest.raises(ValueError, match="acc_format='operand' needs a float operand format"):
        accumulator_format("int8", "operand")
    with pytest.raises(ValueError, match="unknown acc_format 'narrow'"):
        accumulator_format("fp16", "narrow")
    assert ACC_FORMATS == ("wide", "operand")


def test_no_format_branches_outside_the_arithmetic():
    """Formats are told apart by their registry entry's attributes, never by
    comparing a dtype name, except inside the arithmetic units."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    names = "|".join(NUMBER_FORMATS)
    branch = re.compile(rf"""(==|!=)\s*["']({names})["']|["']({names})["']\s*(==|!=)""")
    found = [
        f"{path.relative_to(root)}:{i}: {line.strip()}"
        for package in ("focus_hw", "focus_algo", "sim", "synth")
        for path in sorted((root / package).rglob("*.py"))
        if "arith" not in path.relative_to(root).parts
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if branch.search(line)
    ]
    assert not found, "\n".join(found)
