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
    """A tiny random-weight Qwen2-VL saved with its processor: a WordLevel
    tokenizer built offline and default-built image (and video) processors."""
    from tiny_models import TEXT_VOCAB, tiny_qwen2vl
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2VLImageProcessorPil
    from transformers.utils import is_torchvision_available
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
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    sizes = dict(patch_size=2, merge_size=2, temporal_patch_size=2, min_pixels=8 * 8,
                 max_pixels=16 * 16)
    image = Qwen2VLImageProcessorPil(**sizes)
    if is_torchvision_available():   # a full processor (video processors need torchvision)
        from transformers import Qwen2VLProcessor, Qwen2VLVideoProcessor
        Qwen2VLProcessor(image_processor=image, tokenizer=tokenizer,
                         video_processor=Qwen2VLVideoProcessor(**sizes),
                         chat_template=CHAT_TEMPLATE).save_pretrained(folder)
    else:                            # its parts; the runner assembles them
        tokenizer.save_pretrained(folder)
        image.save_pretrained(folder)
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
    # resuming under other settings is refused, naming the method
    res = CliRunner().invoke(eval_command, [str(a) for a in base_args(
        checkpoint, dataset, out, params_file)] + ["--adaptiv-threshold", "0.7"])
    assert res.exit_code == 1 and "'adaptiv' results of other settings" in res.output
    assert (out / "samples.csv").read_text() == before


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
    empty = tmp_path / "no-configs"
    empty.mkdir()
    res = CliRunner().invoke(eval_command, [str(a) for a in common + [
        "--methods", "cmc", "--baseline-config", empty]])
    assert res.exit_code == 1 and "cmc_config.csv" in res.output
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


def test_runner_row_matches_independent_forward(checkpoint, tmp_path, params_file):
    """One cmc row recomputed by hand: prompt -> processor -> enable_focus ->
    option-letter logits; sparsity = weight-size-weighted report mean."""
    from focus_algo.eval import MethodSpec, build_prompt, load_checkpoint, run_eval
    from focus_algo.integration import enable_focus
    dataset = image_dataset(tmp_path, n=1)
    (sample,) = load_dataset(dataset)
    model, processor = load_checkpoint(checkpoint)
    params = FocusParams.load(params_file)
    spec = MethodSpec("cmc", params, threshold=0.4, query_threshold=0.8)
    run_eval(model, processor, [sample], [spec], tmp_path / "o", progress=False)
    row = pd.read_csv(tmp_path / "o" / "samples.csv").iloc[0]

    text = "<|vision_start|><|image_pad|><|vision_end|>" + build_prompt(sample)
    inputs = processor(text=[text], images=[np.asarray(Image.open(sample.media))],
                       return_tensors="pt")
    handle = enable_focus(model, params, method="cmc", sec=False, threshold=0.4,
                          query_threshold=0.8)
    try:
        with torch.no_grad():
            logits = model(**inputs).logits[0, -1]
        report = handle.report()
    finally:
        handle.remove()
    letters = [processor.tokenizer.convert_tokens_to_ids(c) for c in "ABC"]
    assert row["prediction"] == "ABC"[int(logits[letters].argmax())]
    t = int(report["tokens"].iloc[0])
    weights = {"q_proj": 64 * (64 + 2 * 2 * 16), "o_proj": 64 * 64, "gate_proj": 2 * 64 * 128,
               "down_proj": 64 * 128, "query": 64 * t}
    w = report["site"].map(weights)
    assert row["sparsity"] == pytest.approx(float((report["sparsity"] * w).sum() / w.sum()))
    assert row["visual_tokens"] == t == row["visual_kept"]


def test_config_csvs_select_params_and_thresholds(checkpoint, tmp_path):
    dataset = image_dataset(tmp_path, n=1)
    (tmp_path / "focus_config.csv").write_text(
        "model,dataset,selected_layers,alpha_list,similarity_threshold\n"
        'tiny,bench,"[1, 3]","[0.5, 0.25]",0.8\n'
        'default,,"[2, 5, 8, 16, 25]","[0.4, 0.3, 0.2, 0.15, 0.1]",0.9\n')
    (tmp_path / "cmc_config.csv").write_text(
        "model,dataset,CMC_threshold,CMC_query_threshold,CMC_attn_threshold\n"
        "default,,100.0,100.0,0.00005\n")            # residuals are always < 100: all reused
    (tmp_path / "adaptiv_config.csv").write_text(
        "model,dataset,adaptiv_threshold\ntiny,bench,-1.0\ndefault,,1.0\n")
    out = tmp_path / "o"
    res = invoke("--checkpoint", checkpoint, "--dataset", dataset, "--out", out,
                 "--methods", "focus,cmc,adaptiv", "--focus-config", tmp_path / "focus_config.csv",
                 "--baseline-config", tmp_path, "--model-name", "tiny", "--dataset-name", "bench")
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(out / "samples.csv").set_index("method")
    assert rows["error"].isna().all()
    t = rows.loc["focus", "visual_tokens"]
    assert rows.loc["focus", "visual_kept"] == max(1, round(0.25 * t))
    # threshold -1 (the tiny row, not the default 1.0): every token but the
    # first has a neighbour with sign similarity > -1 and merges, at every site
    assert rows.loc["adaptiv", "sparsity"] == pytest.approx((t - 1) / t)
    assert rows.loc["cmc", "sparsity"] == 0.0      # an image has one frame: nothing to reuse


@pytest.mark.slow
def test_two_processes_share_the_samples(checkpoint, tmp_path, params_file):
    """torchrun with 2 CPU workers: each runs its shard, the main one merges."""
    import os
    import subprocess
    import sys
    dataset = image_dataset(tmp_path, n=5)
    script = tmp_path / "launch.py"
    script.write_text("import torch\ntorch.set_num_threads(1)\n"
                      "from focus_algo.eval.cli import eval_command\neval_command()\n")
    out = tmp_path / "run"
    args = [str(a) for a in base_args(checkpoint, dataset, out, params_file)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(script), *args, "--methods", "dense,cmc"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "eval [1]" in proc.stderr                      # the second worker ran a shard
    samples = pd.read_csv(out / "samples.csv", dtype={"id": str})
    assert sorted(zip(samples["id"], samples["method"])) == \
        sorted((f"s{i}", m) for i in range(5) for m in ("dense", "cmc"))
    assert not list(out.glob("samples.part*.csv"))


def test_video_sample_needs_a_video_processor(checkpoint, tmp_path, params_file):
    """A valid .npy clip is scored when transformers can build a video
    processor (torchvision installed); otherwise its row names the cause."""
    from transformers.utils import is_torchvision_available
    rng = np.random.default_rng(1)
    np.save(tmp_path / "clip.npy", rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8))
    dataset = write_dataset(tmp_path, [_row("v", "video", "clip.npy")])
    out = tmp_path / "o"
    res = invoke(*base_args(checkpoint, dataset, out, params_file), "--methods", "dense")
    assert res.exit_code == 0, res.output
    row = pd.read_csv(out / "samples.csv").iloc[0]
    if is_torchvision_available():
        assert pd.isna(row["error"]) and row["prediction"] in "ABC"
    else:
        assert "no video processor" in row["error"] and "torchvision" in row["error"]
