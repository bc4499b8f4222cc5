"""Resumable multiple-choice accuracy runs of dense / Focus / CMC / AdapTiV.

For every sample the same prompt (question, the options, then
"Answer with the option's letter ...", wrapped in the processor's chat
template) is run once per method; the prediction is the option letter whose
next-token logit after the prompt is the largest (one forward, no
generation). Methods other than ``dense`` run under
:func:`focus_algo.integration.enable_focus`.

Output folder:

* ``samples.csv`` -- one row per (sample id, method): the predicted and true
  letters, ``correct`` (1/0; empty on error), ``sparsity`` (SIC/baseline
  sparsity of the GEMM inputs, per layer and site averaged with the GEMMs'
  weight sizes as weights, :ref:`method-sparsity`; 0 for dense), ``visual_tokens`` /
  ``visual_kept`` (visual tokens in the prompt / after the last layer),
  ``wall_s`` (the forward), fidelity against the dense run of the same
  invocation (``kl_last``: KL(dense || method) of the next-token
  distribution; ``top1_agree``: same next token; ``agree_dense``: same
  option letter), ``option_logprobs`` (JSON) and ``error``.
  Rewritten atomically (temp file + rename) after every sample, so a crash
  never leaves a torn file. A rerun skips the (id, method) pairs already
  recorded without error; rows with an error are retried and replaced. It
  also removes the temp files a killed run left behind and drops a torn last
  line (a file not ending in a newline, e.g. from an interrupted copy).
* ``summary.csv`` / ``summary.json`` / ``summary.png`` -- per method.
* ``settings.json`` -- each method's settings; resuming under other
  settings is refused.

Several processes (``accelerate launch`` on GPUs, ``torchrun`` on CPUs) split
the samples with
``Accelerator.split_between_processes``; each writes
``samples.part<rank>.csv`` and the main process merges them into
``samples.csv`` at the end (a rerun also picks up parts of a crashed run).
"""

from __future__ import annotations

import io
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from focus_hw.fileio import atomic_write_bytes, atomic_write_text, figure_png
from focus_hw.params import FocusParams

from . import METHODS
from .dataset import Sample, load_media
from .video import FrameVideoProcessor, video_settings

__all__ = [
    "CheckpointError",
    "MethodSpec",
    "METHODS",
    "COLUMNS",
    "load_checkpoint",
    "build_prompt",
    "run_eval",
    "summarize",
]

COLUMNS = [
    "id",
    "method",
    "prediction",
    "answer",
    "correct",
    "sparsity",
    "visual_tokens",
    "visual_kept",
    "wall_s",
    "kl_last",
    "top1_agree",
    "agree_dense",
    "option_logprobs",
    "error",
]

_MODEL_CLASSES = {
    "qwen2_vl": ("Qwen2VLForConditionalGeneration", "Qwen2VLProcessor"),
    "qwen2_5_vl": ("Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor"),
    "llava_onevision": ("LlavaOnevisionForConditionalGeneration", "LlavaOnevisionProcessor"),
}


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be evaluated."""


@dataclass(frozen=True)
class MethodSpec:
    """One evaluated method: ``name`` in :data:`METHODS`; for the others the
    arguments of ``enable_focus``."""

    name: str
    params: FocusParams | None = None
    sec: bool = False
    threshold: float | None = None
    query_threshold: float | None = None

    def enable(self, model):
        from focus_algo.integration import enable_focus

        return enable_focus(
            model,
            self.params,
            method=self.name,
            sec=self.sec,
            threshold=self.threshold,
            query_threshold=self.query_threshold,
        )


# -- checkpoint -------------------------------------------------------------------


def load_checkpoint(path, *, dtype: torch.dtype | None = None):
    """(model, processor) of a local checkpoint folder; never touches the hub."""
    import transformers

    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a folder")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"checkpoint {path} has no config.json")
    config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
    if config.model_type not in _MODEL_CLASSES:
        raise CheckpointError(
            f"checkpoint {path}: model_type {config.model_type!r} is not "
            f"supported (expected one of {sorted(_MODEL_CLASSES)})"
        )
    model_cls, processor_cls = (getattr(transformers, n) for n in _MODEL_CLASSES[config.model_type])
    try:
        model = model_cls.from_pretrained(path, local_files_only=True, dtype=dtype)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: cannot load the model ({e})") from None
    processor = _load_processor(path, processor_cls, config.model_type)
    if not getattr(processor, "chat_template", None):
        raise CheckpointError(f"checkpoint {path}: the processor has no chat template")
    return model.eval(), processor


def _load_processor(path: Path, processor_cls, model_type: str):
    """AutoProcessor; without torchvision (transformers' video processors need
    it, and a VLM processor cannot be built without one) the processor is
    assembled from its tokenizer, image processor and a
    :class:`~focus_algo.eval.video.FrameVideoProcessor` (frame-wise video
    preprocessing by the image processor)."""
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer
    from transformers.utils import is_torchvision_available

    try:
        return AutoProcessor.from_pretrained(path, local_files_only=True)
    except Exception as e:  # noqa: BLE001 -- re-raised below unless torchvision is the cause
        if is_torchvision_available():
            raise CheckpointError(f"checkpoint {path}: cannot load the processor ({e})") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        video_processor = FrameVideoProcessor(image_processor, model_type, video_settings(path))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: cannot load the processor ({e})") from None
    extra = {}
    if (path / "processor_config.json").is_file():
        extra = json.loads((path / "processor_config.json").read_text())
        extra = {k: v for k, v in extra.items() if k in processor_cls.__init__.__code__.co_varnames}
    template = path / "chat_template.jinja"
    chat_template = template.read_text() if template.is_file() else tokenizer.chat_template
    return _with_frame_video(processor_cls)(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=chat_template,
        **extra,
    )


def _with_frame_video(processor_cls):
    """A subclass of ``processor_cls`` that also takes a
    :class:`FrameVideoProcessor` as its video processor (transformers checks
    each part's class, and ours is not the torchvision-based one it expects)."""

    class Processor(processor_cls):
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name == "video_processor" and isinstance(argument, FrameVideoProcessor):
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    Processor.__name__ = Processor.__qualname__ = processor_cls.__name__
    return Processor


# -- one sample ---------------------------------------------------------------------


def build_prompt(sample: Sample) -> str:
    """The user text of a sample (the media goes before it)."""
    return "\n".join(
        [
            sample.question,
            *sample.options,
            "Answer with the option's letter from the given choices directly.",
        ]
    )


def _encode(processor, sample: Sample, media: np.ndarray) -> dict:
    messages = [
        {
            "role": "user",
            "content": [{"type": sample.kind}, {"type": "text", "text": build_prompt(sample)}],
        }
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if sample.kind == "video":
        return processor(text=[text], videos=[media], return_tensors="pt")
    return processor(text=[text], images=[media], return_tensors="pt")


def _letter_ids(tokenizer, sample: Sample) -> list[int]:
    ids = []
    for letter in sample.letters:
        enc = tokenizer.encode(letter, add_special_tokens=False)
        if len(enc) != 1:
            raise ValueError(f"option letter {letter!r} is not a single token ({enc})")
        ids.append(enc[0])
    return ids


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _site_weights(config, visual: int) -> dict[str, int]:
    """GEMM weight size per site (:ref:`method-sparsity`); the attention
    query's "weight" is the key matrix of the ``visual`` tokens."""
    d, f = config.hidden_size, config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or d // config.num_attention_heads
    kv = config.num_key_value_heads * head_dim
    return {
        "q_proj": d * (d + 2 * kv),
        "query": d * visual,
        "o_proj": d * d,
        "gate_proj": 2 * d * f,
        "down_proj": d * f,
    }


@torch.inference_mode()
def _forward(model, inputs, spec: MethodSpec, device):
    """Last-position logits (fp32, CPU), wall seconds, sparsity, visual kept."""
    handle = spec.enable(model) if spec.name != "dense" else None
    try:
        _sync(device)
        start = time.perf_counter()
        logits = model(**inputs, use_cache=False).logits[0, -1].float().cpu()
        _sync(device)
        wall = time.perf_counter() - start
        if handle is None:
            return logits, wall, 0.0, None
        report = handle.report()
        kept = int(report.groupby("layer")["kept_after"].first().iloc[-1])
        weights = report["site"].map(_site_weights(handle.lm.config, int(report["tokens"].iloc[0])))
        sparsity = float((report["sparsity"] * weights).sum() / weights.sum())
        return logits, wall, sparsity, kept
    finally:
        if handle is not None:
            handle.remove()


def _error(e: Exception) -> str:
    """One-line error text of a sample (one CSV row is one line)."""
    return " ".join(f"{type(e).__name__}: {e}".split())


def _row(sample, method, **values) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(id=sample.id, method=method, answer=sample.answer, error="")
    row.update(values)
    return row


def _run_sample(model, processor, sample, specs, pending, frames, device) -> list[dict]:
    from focus_algo.integration import find_layout

    try:
        media = load_media(sample, frames)
        inputs = _encode(processor, sample, media).to(device)
        letter_ids = _letter_ids(processor.tokenizer, sample)
        layout = find_layout(model, inputs)
        if layout is None:
            raise ValueError("the encoded prompt holds no visual placeholder tokens")
        visual = layout.num_visual
    except Exception as e:  # noqa: BLE001 -- a bad sample is recorded, the run goes on
        return [_row(sample, s.name, error=_error(e)) for s in pending]
    rows, dense = [], None
    for spec in specs:
        if spec not in pending and spec.name != "dense":  # dense always: the reference
            continue
        try:
            logits, wall, sparsity, kept = _forward(model, inputs, spec, device)
        except Exception as e:  # noqa: BLE001
            if spec in pending:
                rows.append(_row(sample, spec.name, error=_error(e)))
            continue
        if spec.name == "dense":
            dense = logits
        logp = torch.log_softmax(logits[letter_ids], dim=0)
        pred = sample.letters[int(logp.argmax())]
        values = dict(
            prediction=pred,
            correct=int(pred == sample.answer),
            sparsity=sparsity,
            visual_tokens=visual,
            visual_kept=visual if kept is None else kept,
            wall_s=wall,
            option_logprobs=json.dumps(
                dict(zip(sample.letters, [round(float(v), 6) for v in logp]))
            ),
        )
        if dense is not None:
            p, q = torch.log_softmax(dense, 0), torch.log_softmax(logits, 0)
            dense_pred = sample.letters[int(dense[letter_ids].argmax())]
            values.update(
                kl_last=float(torch.sum(p.exp() * (p - q))),
                top1_agree=int(dense.argmax() == logits.argmax()),
                agree_dense=int(pred == dense_pred),
            )
        if spec in pending:
            rows.append(_row(sample, spec.name, **values))
    return rows


# -- results files ----------------------------------------------------------------------

#: Temp files of :func:`focus_hw.fileio.atomic_write_bytes` for this runner's outputs.
_TEMP = re.compile(r"\.(samples(\.part\d+)?\.csv|summary\.(csv|json|png)|settings\.json)\..+")


def _remove_temps(out: Path) -> None:
    """Delete the temp files a killed run left in ``out``."""
    for path in out.glob(".*"):
        if _TEMP.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def _read_rows(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    text = path.read_text()
    if text and not text.endswith("\n"):  # torn last row: drop it, it reruns
        text = text[: text.rfind("\n") + 1]
    if not text:
        return pd.DataFrame(columns=COLUMNS)
    strings = {c: str for c in ("id", "method", "prediction", "answer", "option_logprobs", "error")}
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=strings, keep_default_na=False, na_values=[""])
    except ValueError as e:  # pandas' ParserError / EmptyDataError are ValueErrors
        raise ValueError(
            f"{path}: not a readable samples file ({' '.join(str(e).split())})"
        ) from None
    missing = set(COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: not a samples file of this runner (missing {sorted(missing)})")
    return frame[COLUMNS]


def _merge(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    return out.drop_duplicates(["id", "method"], keep="last").reset_index(drop=True)


def _write_rows(path: Path, frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame[COLUMNS].to_csv(index=False))


def _scored(frame: pd.DataFrame) -> pd.Series:
    """Rows without an error."""
    return frame["error"].isna() | (frame["error"] == "")


def summarize(samples: pd.DataFrame, methods) -> pd.DataFrame:
    """Per method: samples scored, errors, accuracy (mean of ``correct`` over
    the scored rows) and the means of the other per-sample figures."""
    rows = []
    for m in methods:
        part = samples[samples["method"] == m]
        ok = part[_scored(part)]

        def mean(c, ok=ok):
            return float(pd.to_numeric(ok[c]).mean()) if len(ok) else math.nan

        rows.append(
            dict(
                method=m,
                samples=len(ok),
                errors=len(part) - len(ok),
                accuracy=mean("correct"),
                sparsity=mean("sparsity"),
                visual_tokens=mean("visual_tokens"),
                visual_kept=mean("visual_kept"),
                wall_s=mean("wall_s"),
                kl_last=mean("kl_last"),
                top1_agree=mean("top1_agree"),
                agree_dense=mean("agree_dense"),
            )
        )
    return pd.DataFrame(rows)


def _plot(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    for ax, col in zip(axes, ("accuracy", "sparsity")):
        ax.bar(summary["method"], summary[col].fillna(0.0))
        ax.set_title(col)
        ax.set_ylim(0, 1)
    fig.tight_layout()
    atomic_write_bytes(path, figure_png(fig, dpi=100))


# -- the run ------------------------------------------------------------------------------


def _check_settings(path: Path, specs, frames, write: bool) -> None:
    """Refuse to resume ``out`` under other settings: ``settings.json`` keeps
    each method's settings (params, SEC, thresholds, frames)."""
    old = json.loads(path.read_text()) if path.is_file() else {}
    new = {}
    for spec in specs:
        new[spec.name] = json.loads(
            json.dumps(
                dict(  # as read back from the file
                    params=spec.params.to_dict() if spec.params else None,
                    sec=spec.sec,
                    threshold=spec.threshold,
                    query_threshold=spec.query_threshold,
                    frames=frames,
                )
            )
        )
        if spec.name in old and old[spec.name] != new[spec.name]:
            raise ValueError(
                f"{path.parent} holds {spec.name!r} results of other settings "
                f"({old[spec.name]} vs now {new[spec.name]}); use another --out"
            )
    if write:
        atomic_write_text(path, json.dumps({**old, **new}, indent=2))


@dataclass
class _Store:
    out: Path
    rank: int
    world: int

    @property
    def path(self) -> Path:
        return self.out / ("samples.csv" if self.world == 1 else f"samples.part{self.rank}.csv")

    def existing(self) -> pd.DataFrame:
        parts = sorted(self.out.glob("samples.part*.csv"))
        return _merge([_read_rows(self.out / "samples.csv"), *map(_read_rows, parts)])


def run_eval(
    model,
    processor,
    samples: list[Sample],
    specs: list[MethodSpec],
    out,
    *,
    frames: int | None = None,
    progress: bool = True,
    accelerator=None,
) -> pd.DataFrame:
    """Evaluate ``specs`` on ``samples`` into folder ``out``; returns the summary
    (on every process). ``accelerator`` defaults to a new ``Accelerator``."""
    from accelerate import Accelerator

    # cpu=True on a CPU-only machine also lets torchrun/accelerate start gloo workers
    accelerator = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"methods repeat: {names}")
    specs = sorted(specs, key=lambda s: METHODS.index(s.name))  # dense first: the reference
    for spec in specs:  # configuration errors surface before any sample runs
        if spec.name != "dense":
            spec.enable(model).remove()
    if accelerator.is_main_process:
        _remove_temps(out)
    accelerator.wait_for_everyone()  # before any process writes a new temp file
    _check_settings(out / "settings.json", specs, frames, accelerator.is_main_process)
    model.to(accelerator.device)
    store = _Store(out, accelerator.process_index, accelerator.num_processes)
    existing = store.existing()
    finished = existing[_scored(existing)]
    done = set(zip(finished["id"], finished["method"]))
    own = _read_rows(store.path) if store.world > 1 else existing
    with accelerator.split_between_processes(samples) as shard:
        bar = tqdm(
            shard, desc=f"eval [{accelerator.process_index}]", unit="sample", disable=not progress
        )
        for sample in bar:
            pending = [s for s in specs if (sample.id, s.name) not in done]
            if not pending:
                continue
            rows = _run_sample(model, processor, sample, specs, pending, frames, accelerator.device)
            own = _merge([own, pd.DataFrame(rows, columns=COLUMNS)])
            _write_rows(store.path, own)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        merged = store.existing()
        _write_rows(out / "samples.csv", merged)
        for part in out.glob("samples.part*.csv"):
            part.unlink()
        summary = summarize(merged, names)
        atomic_write_text(out / "summary.csv", summary.to_csv(index=False))
        atomic_write_text(
            out / "summary.json",
            json.dumps(json.loads(summary.to_json(orient="records")), indent=2),
        )
        _plot(summary, out / "summary.png")
    accelerator.wait_for_everyone()
    return summarize(_read_rows(out / "samples.csv"), names)
