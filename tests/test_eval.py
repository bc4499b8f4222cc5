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

from focus_algo.eval import (
    DatasetError,
    MediaError,
    load_checkpoint,
    load_dataset,
    load_media,
    sample_frames,
    summarize,
)
from focus_algo.eval.cli import eval_command
from focus_hw import FocusParams
from test_media import write_video

CHAT_TEMPLATE = (
    "{% for m in messages %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}"
)
SPECIAL = {
    "<|image_pad|>": 100,
    "<|video_pad|>": 101,
    "<|vision_start|>": 102,
    "<|vision_end|>": 103,
}


def word_tokenizer(special: dict[str, int]):
    """A WordLevel tokenizer built offline: letters, punctuation, filler words
    up to TEXT_VOCAB, then the ``special`` tokens at their ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from tiny_models import TEXT_VOCAB

    words = [chr(ord("A") + i) for i in range(26)] + ["[UNK]", ".", "?", "'", ","]
    vocab = {w: i for i, w in enumerate(words)}
    vocab.update({f"w{i}": i for i in range(len(vocab), TEXT_VOCAB)})
    vocab.update(special)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tok.add_special_tokens(list(special))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


def build_checkpoint(folder: Path) -> Path:
    """A tiny random-weight Qwen2-VL saved with its processor: a WordLevel
    tokenizer built offline and default-built image (and video) processors."""
    from transformers import Qwen2VLImageProcessorPil
    from transformers.utils import is_torchvision_available

    from tiny_models import tiny_qwen2vl

    model, _ = tiny_qwen2vl()
    model.save_pretrained(folder)
    tokenizer = word_tokenizer(SPECIAL)
    sizes = dict(
        patch_size=2, merge_size=2, temporal_patch_size=2, min_pixels=8 * 8, max_pixels=16 * 16
    )
    image = Qwen2VLImageProcessorPil(**sizes)
    if is_torchvision_available():  # a full processor (video processors need torchvision)
        from transformers import Qwen2VLProcessor, Qwen2VLVideoProcessor

        Qwen2VLProcessor(
            image_processor=image,
            tokenizer=tokenizer,
            video_processor=Qwen2VLVideoProcessor(**sizes),
            chat_template=CHAT_TEMPLATE,
        ).save_pretrained(folder)
    else:  # its parts; the runner assembles them
        tokenizer.save_pretrained(folder)
        image.save_pretrained(folder)
        (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    return folder


LLAVA_TEMPLATE = (
    "{% for m in messages %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% elif c['type'] == 'video' %}<video>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}"
)


def build_llava_checkpoint(folder: Path) -> Path:
    """A tiny LLaVA-OneVision (16x16 images, 4x4 patches) saved with its
    processor parts, as :func:`build_checkpoint`."""
    from transformers import LlavaOnevisionImageProcessorPil
    from transformers.utils import is_torchvision_available

    from tiny_models import tiny_llava_onevision

    model, _ = tiny_llava_onevision()
    model.save_pretrained(folder)
    tokenizer = word_tokenizer({"<image>": 100, "<video>": 101})
    size = {"height": 16, "width": 16}
    image = LlavaOnevisionImageProcessorPil(size=size, image_grid_pinpoints=[[16, 16], [16, 32]])
    extra = dict(num_image_tokens=16, vision_feature_select_strategy="full")
    if is_torchvision_available():
        from transformers import LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor

        LlavaOnevisionProcessor(
            image_processor=image,
            tokenizer=tokenizer,
            video_processor=LlavaOnevisionVideoProcessor(size=size),
            chat_template=LLAVA_TEMPLATE,
            **extra,
        ).save_pretrained(folder)
    else:
        tokenizer.save_pretrained(folder)
        image.save_pretrained(folder)
        (folder / "chat_template.jinja").write_text(LLAVA_TEMPLATE)
        (folder / "processor_config.json").write_text(json.dumps(extra))
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
    return {
        "id": sid,
        media_key: media,
        "question": "Which one ?",
        "options": opts,
        "answer": answer,
    }


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
    return [
        "--checkpoint",
        checkpoint,
        "--dataset",
        dataset,
        "--out",
        out,
        "--params",
        params_file,
        "--cmc-threshold",
        0.4,
        "--cmc-query-threshold",
        0.8,
        "--adaptiv-threshold",
        0.5,
    ]


# -- end to end --------------------------------------------------------------------


def test_eval_end_to_end_and_resume(checkpoint, tmp_path, params_file):
    dataset = image_dataset(tmp_path)
    out = tmp_path / "run"
    res = invoke(*base_args(checkpoint, dataset, out, params_file))
    assert res.exit_code == 0, res.output
    samples = pd.read_csv(out / "samples.csv", dtype={"id": str})
    assert sorted(zip(samples["id"], samples["method"])) == sorted(
        (f"s{i}", m) for i in range(4) for m in METHODS
    )
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
    assert (out / "samples.csv").read_text() == before  # nothing rerun, no duplicates
    # resuming under other settings is refused, naming the method
    res = CliRunner().invoke(
        eval_command,
        [str(a) for a in base_args(checkpoint, dataset, out, params_file)]
        + ["--adaptiv-threshold", "0.7"],
    )
    assert res.exit_code == 1 and "'adaptiv' results of other settings" in res.output
    assert (out / "samples.csv").read_text() == before


def test_eval_corrupt_rows_are_reported_and_skipped(checkpoint, tmp_path, params_file):
    dataset = image_dataset(tmp_path, n=2)
    rows = [json.loads(line) for line in dataset.read_text().splitlines()]
    rows.append(_row("missing", "video", "no_such_frames"))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    rows.append(_row("broken", "image", "bad.png"))
    (tmp_path / "bad.mp4").write_bytes(b"not an mp4")
    rows.append(_row("clip", "video", "bad.mp4"))
    dataset = write_dataset(tmp_path, rows)
    out = tmp_path / "run"
    res = invoke(*base_args(checkpoint, dataset, out, params_file), "--methods", "dense,focus")
    assert res.exit_code == 0, res.output
    samples = pd.read_csv(out / "samples.csv", dtype={"id": str})
    assert len(samples) == 10
    errors = samples.set_index(["id", "method"])["error"]
    assert "no_such_frames" in errors[("missing", "dense")]
    assert "does not exist" in errors[("missing", "focus")]
    assert "cannot read image" in errors[("broken", "dense")]
    assert "bad.mp4: cannot read video" in errors[("clip", "focus")]
    assert errors[[("s0", "dense"), ("s1", "focus")]].isna().all()
    summary = pd.read_csv(out / "summary.csv").set_index("method")
    assert summary.loc["dense", "errors"] == 3 and summary.loc["dense", "samples"] == 2
    ok = samples[samples["method"] == "dense"]
    assert summary.loc["dense", "accuracy"] == pytest.approx(ok["correct"].mean())
    # error rows are retried (and still fail) on a rerun: replaced, not duplicated
    assert (
        invoke(
            *base_args(checkpoint, dataset, out, params_file), "--methods", "dense,focus"
        ).exit_code
        == 0
    )
    again = pd.read_csv(out / "samples.csv", dtype={"id": str})
    assert len(again) == 10 and not again.duplicated(["id", "method"]).any()


def test_eval_limit_and_method_subset(checkpoint, tmp_path, params_file):
    dataset = image_dataset(tmp_path)
    out = tmp_path / "run"
    res = invoke(
        *base_args(checkpoint, dataset, out, params_file), "--methods", "adaptiv", "--limit", 2
    )
    assert res.exit_code == 0, res.output
    samples = pd.read_csv(out / "samples.csv", dtype={"id": str})
    assert samples["id"].tolist() == ["s0", "s1"] and set(samples["method"]) == {"adaptiv"}
    assert samples["kl_last"].isna().all()  # no dense reference in this run


# -- clear errors ------------------------------------------------------------------------


def test_missing_checkpoint_and_config(tmp_path, params_file):
    dataset = image_dataset(tmp_path, n=1)
    res = CliRunner().invoke(
        eval_command,
        [str(a) for a in base_args(tmp_path / "nope", dataset, tmp_path / "o", params_file)],
    )
    assert (
        res.exit_code == 2
        and "'--checkpoint'" in res.output
        and "nope' does not exist" in res.output
    )
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(
        eval_command,
        [str(a) for a in base_args(tmp_path / "empty", dataset, tmp_path / "o", params_file)],
    )
    assert (
        res.exit_code == 2 and "--checkpoint" in res.output and "has no config.json" in res.output
    )


def test_malformed_row_is_named(checkpoint, tmp_path, params_file):
    rows = [_row("a", "image", "x.png"), _row("b", "image", "y.png", answer="Z")]
    dataset = write_dataset(tmp_path, rows)
    res = CliRunner().invoke(
        eval_command, [str(a) for a in base_args(checkpoint, dataset, tmp_path / "o", params_file)]
    )
    assert res.exit_code == 2 and "--dataset" in res.output
    assert "line 2: field 'answer'" in res.output and "'Z'" in res.output


def test_cli_usage_errors(checkpoint, tmp_path, params_file):
    dataset = image_dataset(tmp_path, n=1)
    common = ["--checkpoint", checkpoint, "--dataset", dataset, "--out", tmp_path / "o"]
    res = CliRunner().invoke(eval_command, [str(a) for a in common + ["--methods", "dense,ff"]])
    assert res.exit_code == 2 and "--methods" in res.output
    empty = tmp_path / "no-configs"
    empty.mkdir()
    res = CliRunner().invoke(
        eval_command, [str(a) for a in common + ["--methods", "cmc", "--baseline-config", empty]]
    )
    assert (
        res.exit_code == 2 and "--baseline-config" in res.output and "cmc_config.csv" in res.output
    )
    # default FocusParams has SEC layers the 4-layer model lacks: named before any sample runs
    res = CliRunner().invoke(eval_command, [str(a) for a in common + ["--methods", "focus"]])
    assert res.exit_code == 2 and "sec_layers" in res.output
    # ... and a per-field override
    res = CliRunner().invoke(
        eval_command, [str(a) for a in common + ["--methods", "focus", "--sec-layers", "1,2"]]
    )
    assert res.exit_code == 2 and "sec_keep" in res.output
    args = common + ["--methods", "focus", "--sec-layers", "1", "--sec-keep", "0.5", "--limit", 1]
    res = CliRunner().invoke(eval_command, [str(a) for a in args])
    assert res.exit_code == 0, res.output


# -- dataset format ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "row, field",
    [
        ({"video": "v", "question": "q", "options": ["A. x", "B. y"], "answer": "A"}, "'id'"),
        (
            {"id": "1", "question": "q", "options": ["A. x", "B. y"], "answer": "A"},
            "'video' or 'image'",
        ),
        (
            {
                "id": "1",
                "video": "v",
                "image": "i",
                "question": "q",
                "options": ["A. x", "B. y"],
                "answer": "A",
            },
            "'video' or 'image'",
        ),
        (
            {"id": "1", "video": "v", "question": "", "options": ["A. x", "B. y"], "answer": "A"},
            "'question'",
        ),
        (
            {"id": "1", "video": "v", "question": "q", "options": ["A. x"], "answer": "A"},
            "'options'",
        ),
        (
            {"id": "1", "video": "v", "question": "q", "options": ["A. x", "y"], "answer": "A"},
            "'options'",
        ),
        (
            {"id": "1", "video": "v", "question": "q", "options": ["A. x", "A. y"], "answer": "A"},
            "not distinct",
        ),
        (
            {"id": "1", "video": "v", "question": "q", "options": ["A. x", "B. y"], "answer": "C"},
            "'answer'",
        ),
    ],
)
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
    path.write_text(
        json.dumps(_row("a", "video", "v")) + "\n" + json.dumps(_row("a", "image", "i"))
    )
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
    assert np.array_equal(load_media(folder, frames=3), video[[0, 2, 5]])  # round(0, 2.5, 5)
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
    rows = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "method": ["dense"] * 3,
            "correct": [1, 0, None],
            "sparsity": [0.0, 0.0, None],
            "error": [None, None, "MediaError: x"],
        }
    )
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
    inputs = processor(
        text=[text], images=[np.asarray(Image.open(sample.media))], return_tensors="pt"
    )
    handle = enable_focus(
        model, params, method="cmc", sec=False, threshold=0.4, query_threshold=0.8
    )
    try:
        with torch.no_grad():
            logits = model(**inputs).logits[0, -1]
        report = handle.report()
    finally:
        handle.remove()
    letters = [processor.tokenizer.convert_tokens_to_ids(c) for c in "ABC"]
    assert row["prediction"] == "ABC"[int(logits[letters].argmax())]
    t = int(report["tokens"].iloc[0])
    weights = {
        "q_proj": 64 * (64 + 2 * 2 * 16),
        "o_proj": 64 * 64,
        "gate_proj": 2 * 64 * 128,
        "down_proj": 64 * 128,
        "query": 64 * t,
    }
    w = report["site"].map(weights)
    assert row["sparsity"] == pytest.approx(float((report["sparsity"] * w).sum() / w.sum()))
    assert row["visual_tokens"] == t == row["visual_kept"]


def test_config_csvs_select_params_and_thresholds(checkpoint, tmp_path):
    dataset = image_dataset(tmp_path, n=1)
    (tmp_path / "focus_config.csv").write_text(
        "model,dataset,selected_layers,alpha_list,similarity_threshold\n"
        'tiny,bench,"[1, 3]","[0.5, 0.25]",0.8\n'
        'default,,"[2, 5, 8, 16, 25]","[0.4, 0.3, 0.2, 0.15, 0.1]",0.9\n'
    )
    (tmp_path / "cmc_config.csv").write_text(
        "model,dataset,CMC_threshold,CMC_query_threshold,CMC_attn_threshold\n"
        "default,,100.0,100.0,0.00005\n"
    )  # residuals are always < 100: all reused
    (tmp_path / "adaptiv_config.csv").write_text(
        "model,dataset,adaptiv_threshold\ntiny,bench,-1.0\ndefault,,1.0\n"
    )
    out = tmp_path / "o"
    res = invoke(
        "--checkpoint",
        checkpoint,
        "--dataset",
        dataset,
        "--out",
        out,
        "--methods",
        "focus,cmc,adaptiv",
        "--focus-config",
        tmp_path / "focus_config.csv",
        "--baseline-config",
        tmp_path,
        "--model-name",
        "tiny",
        "--dataset-name",
        "bench",
    )
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(out / "samples.csv").set_index("method")
    assert rows["error"].isna().all()
    t = rows.loc["focus", "visual_tokens"]
    assert rows.loc["focus", "visual_kept"] == max(1, round(0.25 * t))
    # threshold -1 (the tiny row, not the default 1.0): every token but the
    # first has a neighbour with sign similarity > -1 and merges, at every site
    assert rows.loc["adaptiv", "sparsity"] == pytest.approx((t - 1) / t)
    assert rows.loc["cmc", "sparsity"] == 0.0  # an image has one frame: nothing to reuse


@pytest.mark.slow
def test_two_processes_share_the_samples(checkpoint, tmp_path, params_file):
    """torchrun with 2 CPU workers: each runs its shard, the main one merges."""
    import os
    import subprocess
    import sys

    dataset = image_dataset(tmp_path, n=5)
    script = tmp_path / "launch.py"
    script.write_text(
        "import torch\ntorch.set_num_threads(1)\n"
        "from focus_algo.eval.cli import eval_command\neval_command()\n"
    )
    out = tmp_path / "run"
    args = [str(a) for a in base_args(checkpoint, dataset, out, params_file)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
            *args,
            "--methods",
            "dense,cmc",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "eval [1]" in proc.stderr  # the second worker ran a shard
    samples = pd.read_csv(out / "samples.csv", dtype={"id": str})
    assert sorted(zip(samples["id"], samples["method"])) == sorted(
        (f"s{i}", m) for i in range(5) for m in ("dense", "cmc")
    )
    assert not list(out.glob("samples.part*.csv"))


def video_dataset(folder: Path) -> Path:
    """Four clips: 5 frames (.npy, odd: the last frame is repeated), 4 frames
    as a PNG folder, a 13x22 .npy clip that the processor resizes, and a
    6-frame 32x24 .mp4."""
    rng = np.random.default_rng(1)
    np.save(folder / "a.npy", rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8))
    (folder / "b").mkdir()
    for i, frame in enumerate(rng.integers(0, 256, (4, 12, 16, 3), dtype=np.uint8)):
        Image.fromarray(frame).save(folder / "b" / f"{i:03d}.png")
    np.save(folder / "c.npy", rng.integers(0, 256, (4, 13, 22, 3), dtype=np.uint8))
    write_video(folder / "d.mp4", count=6)
    return write_dataset(
        folder,
        [
            _row("a", "video", "a.npy"),
            _row("b", "video", "b", "B"),
            _row("c", "video", "c.npy", "C"),
            _row("d", "video", "d.mp4", "B"),
        ],
    )


def run_video_eval(checkpoint, tmp_path, params_file):
    """``focus eval`` of dense and focus on the 3-clip video dataset: the
    dataset path and the samples.csv rows (all without error)."""
    dataset = video_dataset(tmp_path)
    out = tmp_path / "o"
    res = invoke(*base_args(checkpoint, dataset, out, params_file), "--methods", "dense,focus")
    assert res.exit_code == 0, res.output
    rows = pd.read_csv(out / "samples.csv", dtype={"id": str}).set_index(["id", "method"])
    assert len(rows) == 8 and rows["error"].isna().all()
    return dataset, rows


def test_eval_video_samples_end_to_end(checkpoint, tmp_path, params_file):
    """Video clips (.npy, PNG folder, .mp4) are scored by dense and focus; Focus
    sees a multi-frame grid (with or without torchvision)."""
    from focus_algo.eval import load_checkpoint
    from focus_algo.eval.runner import _encode
    from focus_algo.integration import enable_focus

    dataset, rows = run_video_eval(checkpoint, tmp_path, params_file)
    assert set(rows["prediction"]) <= {"A", "B", "C"}
    # Qwen2-VL grid (ceil(F/2), H/2, W/2) patches, 2x2 merge -> tokens
    tokens = {"a": 3 * 8 * 8 // 4, "b": 2 * 6 * 8 // 4, "c": 2 * 6 * 10 // 4, "d": 3 * 6 * 8 // 4}
    for sid, n in tokens.items():
        assert (
            rows.loc[(sid, "dense"), "visual_tokens"]
            == n
            == rows.loc[(sid, "focus"), "visual_tokens"]
        )
        assert rows.loc[(sid, "focus"), "sparsity"] > 0
        assert rows.loc[(sid, "focus"), "visual_kept"] == max(1, round(0.25 * n))

    model, processor = load_checkpoint(checkpoint)
    sample = load_dataset(dataset)[0]
    inputs = _encode(processor, sample, load_media(sample))
    handle = enable_focus(model, FocusParams.load(params_file), method="focus", sec=True)
    try:
        with torch.no_grad():
            model(**inputs)
        trace = handle.trace()
    finally:
        handle.remove()
    assert (trace.meta.frames, trace.meta.height, trace.meta.width) == (3, 4, 4)


def _clip_normalized(video: np.ndarray, mean, std) -> np.ndarray:
    """(F, C, H, W) float: rescale to [0, 1] and normalize per channel."""
    x = video.astype(np.float64) / 255.0
    return ((x - np.asarray(mean)) / np.asarray(std)).transpose(0, 3, 1, 2)


def test_frame_video_processor_qwen_matches_hand_construction(checkpoint):
    """pixel_values_videos / video_grid_thw / the video-token run against an
    independent layout: frames padded to pairs, (t, merge window, patch in
    window) rows of (channel, time, patch row, patch column)."""
    from transformers import Qwen2VLImageProcessorPil
    from transformers.utils import is_torchvision_available

    from focus_algo.eval import load_checkpoint
    from focus_algo.eval.video import FrameVideoProcessor

    _, processor = load_checkpoint(checkpoint)
    ip = Qwen2VLImageProcessorPil(**processor.image_processor.to_dict())
    frames = FrameVideoProcessor(ip, "qwen2_vl")
    rng = np.random.default_rng(2)
    video = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)  # no resize: 16x16 fits
    out = frames([video], return_tensors="pt")
    assert out["video_grid_thw"].tolist() == [[3, 8, 8]]
    x = _clip_normalized(np.concatenate([video, video[-1:]]), ip.image_mean, ip.image_std)
    x = x.reshape(3, 2, 3, 4, 2, 2, 4, 2, 2)  # t, tp, C, h/m, m, p, w/m, m, p
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(3 * 64, 3 * 2 * 2 * 2)
    assert np.allclose(out["pixel_values_videos"].numpy(), x, atol=1e-5)

    # 13x22 -> smart_resize (factor 4, 64..256 pixels): 12x24 = 288 > 256, so
    # beta = sqrt(13*22/256): floor(13/beta/4)*4 = 12, floor(22/beta/4)*4 = 20
    video = rng.integers(0, 256, (4, 13, 22, 3), dtype=np.uint8)
    out = frames([video], return_tensors="np")
    assert out["video_grid_thw"].tolist() == [[2, 6, 10]]
    # the image processor's own per-frame output (time broadcast over tp=2)
    # with frame pairs interleaved into the time slot by hand
    ref = ip(list(video), return_tensors="np")
    per_frame = ref["pixel_values"].reshape(4, 60, 3, 2, 4)[:, :, :, 0]  # frame, patch, C, p*p
    pairs = np.stack([per_frame[0::2], per_frame[1::2]], axis=3)  # t, patch, C, tp, p*p
    assert np.array_equal(out["pixel_values_videos"], pairs.reshape(120, 24))

    text = "<|vision_start|><|video_pad|><|vision_end|>Which one ?"
    enc = processor(text=[text], videos=[video], return_tensors="pt")
    assert int((enc["input_ids"] == SPECIAL["<|video_pad|>"]).sum()) == 2 * 6 * 10 // 4
    assert enc["video_grid_thw"].tolist() == [[2, 6, 10]]
    if not is_torchvision_available():
        assert isinstance(processor.video_processor, FrameVideoProcessor)
    with pytest.raises(ValueError, match="cap_pixels_per_frame"):
        FrameVideoProcessor(ip, "qwen2_vl", {"cap_pixels_per_frame": True})([video])
    with pytest.raises(ValueError, match="'llava'"):
        FrameVideoProcessor(ip, "llava")


def test_eval_llava_video_end_to_end(tmp_path, params_file):
    """LLaVA-OneVision: frames resized to 16x16, 2x2 pooled tokens per frame
    (the grid; the trailing newline token is not part of it); dense and focus
    rows without errors."""
    checkpoint = build_llava_checkpoint(tmp_path / "ckpt")
    _, rows = run_video_eval(checkpoint, tmp_path, params_file)
    for sid, frames in {"a": 5, "b": 4, "c": 4, "d": 6}.items():
        assert rows.loc[(sid, "focus"), "visual_tokens"] == frames * 2 * 2
        assert rows.loc[(sid, "focus"), "sparsity"] > 0


def test_frame_video_processor_llava_matches_hand_construction(tmp_path):
    """Each frame resized to 16x16 (PIL bicubic), rescaled, normalized:
    (1, F, C, 16, 16); the prompt holds F*2*2 + 1 video tokens."""
    from transformers import LlavaOnevisionImageProcessorPil

    from focus_algo.eval import load_checkpoint
    from focus_algo.eval.video import FrameVideoProcessor

    _, processor = load_checkpoint(build_llava_checkpoint(tmp_path))
    ip = LlavaOnevisionImageProcessorPil(**processor.image_processor.to_dict())
    frames = FrameVideoProcessor(ip, "llava_onevision")
    rng = np.random.default_rng(3)
    video = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    out = frames([video], return_tensors="np")["pixel_values_videos"]
    assert np.allclose(out, _clip_normalized(video, ip.image_mean, ip.image_std)[None], atol=1e-5)
    video = rng.integers(0, 256, (3, 20, 28, 3), dtype=np.uint8)
    resized = np.stack(
        [np.asarray(Image.fromarray(f).resize((16, 16), Image.BICUBIC)) for f in video]
    )
    out = frames([video], return_tensors="np")["pixel_values_videos"]
    assert np.allclose(out, _clip_normalized(resized, ip.image_mean, ip.image_std)[None], atol=1e-5)
    enc = processor(text=["<video>Which one ?"], videos=[video], return_tensors="pt")
    assert int((enc["input_ids"] == 101).sum()) == 3 * 2 * 2 + 1
    assert tuple(enc["pixel_values_videos"].shape) == (1, 3, 3, 16, 16)


def test_packages_patch_nothing_at_run_time(checkpoint):
    """No package imports unittest (mock patching belongs in tests), and
    loading a checkpoint without torchvision's video processor leaves
    transformers' ProcessorMixin as it was: the frame-wise video processor
    is accepted by a subclass of the model's processor."""
    import ast

    from transformers.processing_utils import ProcessorMixin

    root = Path(__file__).parents[1]
    for package in ("focus_hw", "focus_algo", "sim", "synth"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                assert not any(n.split(".")[0] == "unittest" for n in names), path
    check = ProcessorMixin.__dict__["check_argument_for_proper_class"]
    model, processor = load_checkpoint(checkpoint)
    assert ProcessorMixin.__dict__["check_argument_for_proper_class"] is check
    assert isinstance(processor, ProcessorMixin)
