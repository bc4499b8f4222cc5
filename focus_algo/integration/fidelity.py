"""Label-free fidelity of Focus against the dense model on the same input.

* ``hidden_cosine``: cosine similarity of the language model's final
  (post-norm) hidden states, averaged over the positions Focus kept
  (SEC-pruned positions have no Focus state to compare);
* ``hidden_cosine_last``: the same at the last position (the one that
  predicts the next token);
* ``kl_last``: KL(dense || focus) of the next-token distributions at the
  last position (fp32, nats);
* ``top1_agree``: whether both pick the same next token (1.0 / 0.0).
"""

from __future__ import annotations

import torch

from .handle import enable_focus, language_model

__all__ = ["fidelity", "compare"]


def fidelity(dense_hidden, focus_hidden, kept, dense_logits, focus_logits) -> dict:
    """Metrics from (S, D) dense and (len(kept), D) Focus final hidden states,
    ``kept`` the original positions of the Focus rows, and last-position logits."""
    d = dense_hidden.float()[kept.to(dense_hidden.device)]
    f = focus_hidden.float()
    cos = torch.nn.functional.cosine_similarity(d, f, dim=-1)
    p = torch.log_softmax(dense_logits.float(), dim=-1)
    q = torch.log_softmax(focus_logits.float(), dim=-1)
    kl = torch.sum(p.exp() * (p - q))
    return {
        "hidden_cosine": float(cos.mean()),
        "hidden_cosine_last": float(cos[-1]),
        "kl_last": float(kl),
        "top1_agree": float(dense_logits.argmax() == focus_logits.argmax()),
    }


@torch.no_grad()
def _run(model, inputs):
    lm = language_model(model)
    captured = {}

    def keep(module, args, output):
        captured["hidden"] = output.last_hidden_state

    hook = lm.register_forward_hook(keep)
    try:
        logits = model(**inputs, use_cache=False).logits
    finally:
        hook.remove()
    return captured["hidden"][0], logits[0, -1]


def compare(
    model,
    inputs: dict,
    params,
    *,
    method: str = "focus",
    sec: bool = True,
    threshold: float | None = None,
) -> dict:
    """Run ``model`` dense and with :func:`enable_focus` on ``inputs``; return the
    fidelity metrics plus the Focus run's mean sparsity and kept visual tokens."""
    dense_hidden, dense_logits = _run(model, inputs)
    handle = enable_focus(model, params, method=method, sec=sec, threshold=threshold)
    try:
        focus_hidden, focus_logits = _run(model, inputs)
        report = handle.report()
        kept = handle.prefill.present
    finally:
        handle.remove()
    out = fidelity(dense_hidden, focus_hidden, kept, dense_logits, focus_logits)
    out["sparsity"] = float(report["sparsity"].mean())
    out["visual_tokens"] = int(report["tokens"].iloc[0])
    out["visual_kept"] = int(report.groupby("layer")["kept_after"].first().iloc[-1])
    return out
