"""SEC: importance, keep count, top-k selection and the focus_config table."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from focus_algo.reference import REFERENCE_DIR
from focus_algo.sec import importance, keep_count, params_from_focus_config, select_tokens
from focus_hw.params import FocusParams

REFERENCE_CONFIG = REFERENCE_DIR / "algorithm" / "focus_config.csv"  # the paper's table
HEADER = "model,dataset,selected_layers,alpha_list,similarity_threshold\n"


def test_importance_is_max_over_heads_and_text_rows():
    rng = np.random.default_rng(0)
    attn = rng.random((4, 12, 12)).astype(np.float32)
    attn /= attn.sum(axis=2, keepdims=True)
    # sequence: 2 system tokens, 6 visual tokens, 4 text tokens
    expected = np.zeros(6, np.float32)
    for v in range(6):
        expected[v] = max(attn[h, q, 2 + v] for h in range(4) for q in range(8, 12))
    got = importance(torch.from_numpy(attn), slice(2, 8), slice(8, 12))
    assert got.dtype == torch.float32 and got.shape == (6,)
    np.testing.assert_array_equal(got.numpy(), expected)
    batched = importance(torch.from_numpy(attn)[None].half(), slice(2, 8), slice(8, 12))
    np.testing.assert_array_equal(batched.numpy(), expected.astype(np.float16))


def test_importance_ignores_visual_query_rows():
    attn = torch.zeros(2, 5, 5)
    attn[1, 1, 2] = 0.9  # a visual query row: not a text query
    attn[0, 4, 2] = 0.3
    attn[1, 3, 1] = 0.2
    assert importance(attn, slice(1, 3), slice(3, 5)).tolist() == pytest.approx([0.2, 0.3])


@pytest.mark.parametrize(
    "attn, visual, text, match",
    [
        (torch.zeros(2, 1, 4, 4), slice(0, 2), slice(2, 4), "batch"),
        (torch.zeros(4, 4), slice(0, 2), slice(2, 4), "heads"),
        (torch.zeros(1, 4, 4), slice(0, 2), slice(4, 4), "text"),
        (torch.zeros(1, 4, 4), slice(5, 6), slice(2, 4), "visual"),
    ],
)
def test_importance_rejects_bad_input(attn, visual, text, match):
    with pytest.raises(ValueError, match=match):
        importance(attn, visual, text)


@pytest.mark.parametrize(
    "ratio, n_original, n_current, expected",
    [
        (0.4, 100, 100, 40),
        (0.1, 100, 40, 10),
        (0.5, 100, 30, 30),  # never more than currently kept
        (0.001, 100, 100, 1),  # at least one
        (0.25, 10, 10, 2),  # round(2.5) -> 2 (half to even)
        (0.35, 10, 10, 4),  # round(3.5) -> 4
        (1.0, 7, 7, 7),
        (0.15, 11648, 2330, 1747),
    ],
)
def test_keep_count(ratio, n_original, n_current, expected):
    assert keep_count(ratio, n_original, n_current) == expected


@pytest.mark.parametrize("args", [(0.0, 10, 10), (1.5, 10, 10), (0.5, 10, 11), (0.5, 10, 0)])
def test_keep_count_rejects_bad_input(args):
    with pytest.raises(ValueError):
        keep_count(*args)


def test_select_tokens_keeps_original_order_and_breaks_ties_low():
    scores = torch.tensor([0.1, 0.5, 0.3, 0.5, 0.9, 0.3, 0.0])
    assert select_tokens(scores, 1).tolist() == [4]
    assert select_tokens(scores, 3).tolist() == [1, 3, 4]
    assert select_tokens(scores, 4).tolist() == [1, 2, 3, 4]  # 0.3 tie: index 2 first
    assert select_tokens(scores, 7).tolist() == list(range(7))
    assert select_tokens(torch.zeros(5), 2).tolist() == [0, 1]


@given(st.lists(st.integers(0, 5), min_size=1, max_size=40), st.data())
def test_select_tokens_matches_python_sort(values, data):
    k = data.draw(st.integers(1, len(values)))
    chosen = sorted(sorted(range(len(values)), key=lambda i: (-values[i], i))[:k])
    got = select_tokens(torch.tensor(values, dtype=torch.float16), k)
    assert got.dtype == torch.int64 and got.tolist() == chosen


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("n", [7, 1000, 20000])
def test_select_tokens_tie_heavy_lower_index_wins(dtype, n):
    # four distinct values (zero of both signs) over many tokens: most of the
    # k-th largest value's tokens tie, and the lowest-indexed ones must win
    rng = np.random.default_rng(n)
    levels = np.array([-0.0, 0.0, 0.25, 0.5, 0.75], np.float32)
    values = levels[rng.integers(0, len(levels), n)]
    for k in sorted({1, n // 10 or 1, int(0.4 * n) or 1, n - 1 or 1, n}):
        chosen = sorted(sorted(range(n), key=lambda i: (-values[i], i))[:k])
        got = select_tokens(torch.from_numpy(values).to(dtype), k)
        assert got.tolist() == chosen


@pytest.mark.parametrize("k", [0, 4])
def test_select_tokens_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must"):
        select_tokens(torch.ones(3), k)


def test_select_tokens_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        select_tokens(torch.tensor([1.0, float("nan")]), 1)


# -- focus_config.csv --------------------------------------------------------


@pytest.mark.parametrize(
    "model, dataset, layers, keep, threshold",
    [
        ("llava_vid", "videomme", (3, 6, 9, 18, 26), (0.4, 0.3, 0.2, 0.15, 0.1), 0.9),
        ("llava_onevision", "mvbench", (2, 5, 8, 16, 25), (0.4, 0.3, 0.25, 0.2, 0.1), 0.9),
        ("minicpm_v", "mlvu", (2, 5, 8, 16, 25), (0.4, 0.3, 0.2, 0.15, 0.1), 0.95),
        ("qwen2_5_vl", "mme", (10, 15, 20), (0.3, 0.2, 0.1), 0.9),
        ("unknown_model", "videomme", (2, 5, 8, 16, 25), (0.4, 0.3, 0.2, 0.15, 0.1), 0.9),
    ],
)
def test_reference_focus_config(model, dataset, layers, keep, threshold):
    p = params_from_focus_config(REFERENCE_CONFIG, model, dataset)
    assert (p.sec_layers, p.sec_keep, p.threshold) == (layers, keep, threshold)


def write(tmp_path, body, name="focus_config.csv"):
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


def test_config_row_and_base_fields(tmp_path):
    path = write(tmp_path, 'm,d,"[1, 4]","[0.5, 0.25]",0.8\ndefault,,"[2]","[0.3]",0.7\n')
    base = FocusParams(vector_size=16, m_tile=512)
    p = params_from_focus_config(path, "m", "d", base)
    assert p == base.replace(sec_layers=(1, 4), sec_keep=(0.5, 0.25), threshold=0.8)
    q = params_from_focus_config(path, "m", "other")
    assert (q.sec_layers, q.sec_keep, q.threshold) == ((2,), (0.3,), 0.7)


def test_config_dataset_specific_default(tmp_path):
    path = write(tmp_path, 'default,d,"[3]","[0.2]",0.85\ndefault,,"[2]","[0.3]",0.7\n')
    assert params_from_focus_config(path, "x", "d").sec_layers == (3,)
    assert params_from_focus_config(path, "x", "e").sec_layers == (2,)


def test_config_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        params_from_focus_config(tmp_path / "nope.csv", "m", "d")


def test_config_no_row_and_no_default(tmp_path):
    path = write(tmp_path, 'm,d,"[1]","[0.5]",0.8\n')
    with pytest.raises(ValueError, match="no row for model='x' dataset='d'"):
        params_from_focus_config(path, "x", "d")


@pytest.mark.parametrize(
    "body, match",
    [
        ('m,d,"[1, 2]","[0.5]",0.8\n', r"focus_config.csv:2: .*sec_keep"),
        ('m,d,"1, 2","[0.5, 0.4]",0.8\n', r"focus_config.csv:2: column 'selected_layers'"),
        ('m,d,"[1.5]","[0.5]",0.8\n', r":2: column 'selected_layers' must hold integers"),
        ('m,d,"[1]","[\'a\']",0.8\n', r":2: column 'alpha_list'"),
        ('m,d,"[1]","[0.5]",high\n', r":2: column 'similarity_threshold'"),
        ('m,d,"[1]","[0.5]",1.5\n', r":2: .*threshold"),
        ('m,d,"[1]","[0.5]"\n', r":2: expected 5 fields"),
        ('m,d,"[1]","[0.5]",0.8,extra\n', r":2: expected 5 fields"),
        ('m,d,"[1]","[0.5]",0.8\nm,d,"[2]","[0.5]",0.8\n', r":3: duplicate row"),
        ('m,d,"[4, 2]","[0.5, 0.4]",0.8\n', r":2: .*sec_layers"),
    ],
)
def test_config_malformed_rows(tmp_path, body, match):
    path = write(tmp_path, body)
    with pytest.raises(ValueError, match=match):
        params_from_focus_config(path, "m", "d")


def test_config_missing_column(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('model,dataset,selected_layers,similarity_threshold\nm,d,"[1]",0.8\n')
    with pytest.raises(ValueError, match="missing column.*alpha_list"):
        params_from_focus_config(path, "m", "d")
