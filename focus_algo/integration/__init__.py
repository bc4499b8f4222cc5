"""Focus inside Hugging Face transformers VLMs (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision).

``enable_focus(model, params)`` hooks SIC (or a token-level baseline) into
every decoder GEMM input and SEC into the selected layers; the returned
:class:`FocusHandle` reports sparsities, builds the sparse trace and removes
everything again. :func:`compare` measures dense-vs-Focus fidelity.
"""

from .fidelity import compare, fidelity
from .handle import METHODS, FocusHandle, enable_focus, language_model
from .spans import Segment, VisualLayout, find_layout

__all__ = [
    "enable_focus",
    "FocusHandle",
    "METHODS",
    "compare",
    "fidelity",
    "find_layout",
    "Segment",
    "VisualLayout",
    "language_model",
]
