"""focus eval: dataset format, tiny offline checkpoint end to end, resume, errors."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from focus_algo.eval import (DatasetError, MediaError, load_dataset, load_media, sample_frames,
                             summarize)
from focus_algo.eval.cli import eval_command
from focus_hw import FocusParams

CHAT_TEMPLATE = (
    "{% for m in messages %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}")
SPECIAL = {"<|image_pad|>": 100, "<|video_pad|>": 101, "<|vision_start|>": 102,
           "<|vision_end|>": 103}


def build_checkpoint(folder: Path) -> Path:
    """A tiny random-weight Qwen2-VL saved with its tokenizer (a WordLevel
    vocabulary built offline) and PIL image processor."""
    from tiny_models import TEXT_VOCAB, tiny_qwen2vl
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2VLImageProcessorPil
    model, _ = tiny_qwen2vl()
    model.save_pretrained(folder)
    words = [chr(ord("A") + i) for i in range(26)] + ["[UNK]", ".", "?", "'", ","]
    vocab = {w: i for i, w in enumerate(words)}
    vocab.update({f"w{i}": i for i in range(len(vocab), TEXT_VOCAB)})
    vocab.update(SPECIAL)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation()])
    tok.add_special_tokens(list(SPECIAL))
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(folder)
    Qwen2VLImageProcessorPil(patch_size=2, merge_size=2, temporal_patch_size=2,
                             min_pixels=8 * 8, max_pixels=16 * 16).save_pretrained(folder)
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    return folder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model is ~50x slower with several OpenMP threads on a busy
    shared CPU (spin-waiting); one thread keeps the module fast."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, one_thread):
    return build_checkpoint(tmp_path_factory.mktemp("ckpt"))


def _row(sid, media_key, media, answer="A", n=3):
    opts = [f"{chr(65 + i)}. option {i}" for i in range(n)]
    return {"id": sid, media_key: media, "question": "Which one ?", "options": opts,
            "answer": answer}


def write_dataset(folder: Path, rows) -> Path:
    path = folder / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def image_dataset(folder: Path, n=4) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        img = rng.integers(0, 256, (12 + 2 * i, 16, 3), dtype=np.uint8)
        Image.fromarray(img).save(folder / f"img{i}.png")
        rows.append(_row(f"s{i}", "image", f"img{i}.png", answer="ABC"[i % 3]))
    return write_dataset(folder, rows)


@pytest.fixture()
def params_file(tmp_path):
    path = tmp_path / "params.json"
    FocusParams(sec_layers=(1, 2), sec_keep=(0.5, 0.25), vector_size=8).save(path)
    return path


METHODS = ["dense", "focus", "cmc", "adaptiv"]


def invoke(*args):
    return CliRunner().invoke(eval_command, [str(a) for a in args], catch_exceptions=False)


def base_args(checkpoint, dataset, out, params_file):
    return ["--checkpoint", checkpoint, "--dataset", dataset, "--out", out,
            "--params", params_file, "--cmc-threshold", 0.4, "--cmc-query-threshold", 0.8,
            "--adaptiv-threshold", 0.5]


# -- end to end --------------------------------------------------------------------

def test_eval_end_to_end_and_resume(checkpoint, tmp_path, params_file):
    dataset = image_dataset(tmp_path)
    out = tmp_path / "run"
    res = invoke(*base_args(checkpoint, dataset, out, params_file))
    assert res.exit_code == 0, res.output
    samples = pd.read_csv(out / "samples.csv", dtype={"id": str})
    assert sorted(zip(samples["id"], samples["method"])) == \
        sorted((f"s{i}", m) for i in range(4) for m in METHODS)
    assert samples["error"].isna().all()
    assert set(samples["prediction"]) <= {"A", "B", "C"}
    assert (samples["correct"] == (samples["prediction"] == samples["answer"])).all()
    dense = samples[samples["method"] == "dense"]
    assert (dense["sparsity"] == 0).all() and (dense["visual_kept"] == dense["visual_tokens"]).all()
    assert (dense["kl_last"].abs() < 1e-6).all() and (dense["top1_agree"] == 1).all()
    focus = samples[samples["method"] == "focus"]
    # SEC keeps round(0.25 * T) visual tokens (at least 1) after its last layer
    expect = [max(1, round(0.25 * t)) for t in focus["visual_tokens"]]
    assert focus["visual_kept"].tolist() == expect
    assert (focus["sparsity"] > 0).all()
    probs = [sum(math.exp(v) for v in json.loads(s).values()) for s in samples["option_logprobs"]]
    assert np.allclose(probs, 1.0, atol=1e-4)

    summary = pd.read_csv(out / "summary.csv")
    for m in METHODS:
        part = samples[samples["method"] == m]
        row = summary[summary["method"] == m].iloc[0]
        assert row["accuracy"] == pytest.approx(part["correct"].mean())
        assert row["sparsity"] == pytest.approx(part["sparsity"].mean())
        assert row["samples"] == 4 and row["errors"] == 0
    assert json.loads((out / "summary.json").read_text())[0]["method"] == "dense"
    assert (out / "summary.png").stat().st_size > 0

    before = (out / "samples.csv").read_text()
    res = invoke(*base_args(checkpoint, dataset, out, params_file))
    assert res.exit_code == 0, res.output
    assert (out / "samples.csv").read_text() == before      # nothing rerun, no duplicates


def test_eval_corrupt_rows_are_reported_and_skipped(checkpoint, tmp_path, params_file):
    dataset = image_dataset(tmp_path, n=2)
    rows = [json.loads(line) for line in dataset.read_text().splitlines()]
    rows.append(_row("missing", "video", "no_such_frames"))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    rows.append(_row("broken", "image", "bad.png"))
    dataset = write_dataset(tmp_path, rows)
    out = tmp_path / "run"
    res = invoke(*base_args(checkpoint, dataset, out, params_file), "--methods", "dense,focus")
    assert res.exit_code == 0, res.output
    samples = pd.read_csv(out / "samples.csv", dtype={"id": str})
    assert len(samples) == 8
    errors = samples.set_index(["id", "method"])["error"]
    assert "no_such_frames" in errors[("missing", "dense")]
    assert "does not exist" in errors[("missing", "focus")]
    assert "cannot read image" in errors[("broken", "dense")]
    assert errors[[("s0", "dense"), ("s1", "focus")]].isna().all()
    summary = pd.read_csv(out / "summary.csv").set_index("method")
    assert summary.loc["dense", "errors"] == 2 and summary.loc["dense", "samples"] == 2
    ok = samples[samples["method"] == "dense"]
    assert summary.loc["dense", "accuracy"] == pytest.approx(ok["correct"].mean())
    # error rows are retried (and still fail) on a rerun: replaced, not duplicated
    assert invoke(*base_args(checkpoint, dataset, out, params_file),
                  "--methods", "dense,focus").exit_code == 0
    again = pd.read_csv(out / "samples.csv", dtype={"id": str})
    assert len(again) == 8 and not again.duplicated(["id", "method"]).any()


def test_eval_limit_and_method_subset(checkpoint, tmp_path, params_file):
    dataset = image_dataset(tmp_path)
    out = tmp_path / "run"
    res = invoke(*base_args(checkpoint, dataset, out, params_file),
                 "--methods", "adaptiv", "--limit", 2)
    assert res.exit_code == 0, res.output
    samples = pd.read_csv(out / "samples.csv", dtype={"id": str})
    assert samples["id"].tolist() == ["s0", "s1"] and set(samples["method"]) == {"adaptiv"}
    assert samples["kl_last"].isna().all()       # no dense reference in this run


# -- clear errors ------------------------------------------------------------------------

def test_missing_checkpoint_and_config(tmp_path, params_file):
    dataset = image_dataset(tmp_path, n=1)
    res = CliRunner().invoke(eval_command, [str(a) for a in base_args(
        tmp_path / "nope", dataset, tmp_path / "o", params_file)])
    assert res.exit_code == 1 and "nope does not exist" in res.output
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(eval_command, [str(a) for a in base_args(
        tmp_path / "empty", dataset, tmp_path / "o", params_file)])
    assert res.exit_code == 1 and "has no config.json" in res.output


def test_malformed_row_is_named(checkpoint, tmp_path, params_file):
    rows = [_row("a", "image", "x.png"), _row("b", "image", "y.png", answer="Z")]
    dataset = write_dataset(tmp_path, rows)
    res = CliRunner().invoke(eval_command, [str(a) for a in base_args(
        checkpoint, dataset, tmp_path / "o", params_file)])
    assert res.exit_code == 1
    assert "line 2: field 'answer'" in res.output and "'Z'" in res.output


def test_cli_usage_errors(checkpoint, tmp_path, params_file):
    dataset = image_dataset(tmp_path, n=1)
    common = ["--checkpoint", checkpoint, "--dataset", dataset, "--out", tmp_path / "o"]
    res = CliRunner().invoke(eval_command, [str(a) for a in common + ["--methods", "dense,ff"]])
    assert res.exit_code == 2 and "--methods" in res.output
    res = CliRunner().invoke(eval_command, [str(a) for a in common + ["--methods", "cmc"]])
    assert res.exit_code == 2 and "--baseline-config" in res.output
    # default FocusParams has SEC layers the 4-layer model lacks: named before any sample runs
    res = CliRunner().invoke(eval_command, [str(a) for a in common + ["--methods", "focus"]])
    assert res.exit_code == 1 and "sec_layers" in res.output


# -- dataset format ----------------------------------------------------------------------

@pytest.mark.parametrize("row, field", [
    ({"video": "v", "question": "q", "options": ["A. x", "B. y"], "answer": "A"}, "'id'"),
    ({"id": "1", "question": "q", "options": ["A. x", "B. y"], "answer": "A"}, "'video' or 'image'"),
    ({"id": "1", "video": "v", "image": "i", "question": "q", "options": ["A. x", "B. y"],
      "answer": "A"}, "'video' or 'image'"),
    ({"id": "1", "video": "v", "question": "", "options": ["A. x", "B. y"], "answer": "A"},
     "'question'"),
    ({"id": "1", "video": "v", "question": "q", "options": ["A. x"], "answer": "A"}, "'options'"),
    ({"id": "1", "video": "v", "question": "q", "options": ["A. x", "y"], "answer": "A"},
     "'options'"),
    ({"id": "1", "video": "v", "question": "q", "options": ["A. x", "A. y"], "answer": "A"},
     "not distinct"),
    ({"id": "1", "video": "v", "question": "q", "options": ["A. x", "B. y"], "answer": "C"},
     "'answer'"),
])
def test_dataset_row_validation(tmp_path, row, field):
    good = _row("0", "video", "v")
    path = write_dataset(tmp_path, [good, row])
    with pytest.raises(DatasetError, match=f"line 2: .*{field}"):
        load_dataset(path)


def test_dataset_file_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "none.jsonl")
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(_row("a", "video", "v")) + "\n\n{oops\n")
    with pytest.raises(DatasetError, match="line 3: not valid JSON"):
        load_dataset(path)
    path.write_text(json.dumps(_row("a", "video", "v")) + "\n" + json.dumps(_row("a", "image", "i")))
    with pytest.raises(DatasetError, match="line 2: field 'id' 'a' repeats line 1"):
        load_dataset(path)
    path.write_text("\n")
    with pytest.raises(DatasetError, match="no rows"):
        load_dataset(path)


def test_video_media_npy_and_frames_folder(tmp_path):
    video = np.arange(6 * 4 * 5 * 3, dtype=np.uint8).reshape(6, 4, 5, 3)
    np.save(tmp_path / "clip.npy", video)
    (tmp_path / "frames").mkdir()
    for i, frame in enumerate(video):
        Image.fromarray(frame).save(tmp_path / "frames" / f"{i:03d}.png")
    path = write_dataset(tmp_path, [_row("n", "video", "clip.npy"), _row("f", "video", "frames")])
    npy, folder = load_dataset(path)
    assert npy.media == (tmp_path / "clip.npy").resolve()
    assert np.array_equal(load_media(npy), video)
    assert np.array_equal(load_media(folder, frames=3), video[[0, 2, 5]])   # round(0, 2.5, 5)
    assert np.array_equal(load_media(npy, frames=10), video)
    np.save(tmp_path / "clip.npy", video.astype(np.float32))
    with pytest.raises(MediaError, match=r"\(F, H, W, 3\) uint8"):
        load_media(npy)


def test_sample_frames_uniform():
    frames = np.arange(10)
    assert sample_frames(frames, 4).tolist() == [0, 3, 6, 9]
    assert sample_frames(frames, 1).tolist() == [0]
    assert sample_frames(frames, None).tolist() == list(range(10))


def test_summarize_excludes_error_rows():
    rows = pd.DataFrame({"id": ["a", "b", "c"], "method": ["dense"] * 3, "correct": [1, 0, None],
                         "sparsity": [0.0, 0.0, None], "error": [None, None, "MediaError: x"]})
    for col in ("visual_tokens", "visual_kept", "wall_s", "kl_last", "top1_agree", "agree_dense"):
        rows[col] = 1.0
    s = summarize(rows, ["dense"]).iloc[0]
    assert s["accuracy"] == 0.5 and s["samples"] == 2 and s["errors"] == 1
