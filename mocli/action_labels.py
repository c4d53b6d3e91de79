"""Ranking free-text action labels with a text-aligned model (``mocli pretrain --pretext action-text``), for
``mocli infer --task action --labels`` (``mocli.actions``) and the Python API.

For B motion clips and K labels: the clips' unit motion embeddings z (B,D) (``ActionTextModel.embed``, batched by
``mocli.predict.run_batches``), the labels' unit text embeddings t (K,D) (the checkpoint's cached ones for its own
labels, else the checkpoint's text model and prompt), similarity = z t^T, probabilities = softmax(similarity /
the training temperature) over the K labels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mocli.errors import MocliError
from mocli.models.action_text import ActionTextModel, load_action_text_model
from mocli.predict import Runtime, run_batches
from mocli.text import TextEmbedder, get_embedder, label_text

__all__ = ["LabelRanking", "rank_labels"]


@dataclass
class LabelRanking:
    """Labels ranked for each of B clips.

    Attributes:
        labels: the K candidate labels, in the order given (or the checkpoint's label set).
        similarity: (B, K) float32 cosine similarity of each clip's motion embedding with each label's text.
        probs: (B, K) float32 softmax(similarity / temperature) over the K labels (the training temperature).
        top_indices: (B, k) int64 indices into ``labels``, best first (k = min(top_k, K)).
        top_labels: B lists of k labels, best first.
        top_probs: (B, k) float32 probabilities of those labels.
    """

    labels: list[str]
    similarity: torch.Tensor
    probs: torch.Tensor
    top_indices: torch.Tensor
    top_labels: list[list[str]]
    top_probs: torch.Tensor


def rank_labels(
    model: ActionTextModel | dict[str, Any] | str | os.PathLike,
    clips: torch.Tensor,
    labels: Sequence[str] | None = None,
    top_k: int = 5,
    *,
    embedder: TextEmbedder | None = None,
    batch_size: int = 64,
    precision: str = "fp32",
) -> LabelRanking:
    """Rank text labels for motion clips with an action-text model.

    Args:
        model: an ActionTextModel, a loaded checkpoint dict, a checkpoint path or a weights name (a checkpoint
            written by ``mocli pretrain --pretext action-text``).
        clips: (B, T, J, 3) normalised x, y (crop-scale box, about [-1, 1]) + confidence, T <= the model's maxlen
            (the model was trained on whole actions resampled to ``clip_len`` frames); or (B, M, T, J, 3) with M
            persons (their embeddings are averaged). Float tensor on any device; the model runs on its own device.
        labels: free-text candidates ('walk', 'wave the right hand'); None: the checkpoint's own label set (cached
            text embeddings, no text package needed). Labels are embedded with the checkpoint's text model and
            prompt; labels of the checkpoint's set reuse its cached embeddings.
        top_k: how many labels to return per clip.
        embedder: a loaded text embedder to reuse (default: loaded on demand, several seconds for the MiniLM model).
        batch_size: clips per forward pass.
        precision: autocast of the model ('fp32': none; ``mocli.predict.Runtime``).
    Raises:
        MocliError: no action-text head, no labels, or the text package is missing for free-text labels.
    """
    net = load_action_text_model(model)
    cfg = net.config
    names = list(net.labels) if labels is None else [str(s).strip() for s in labels if str(s).strip()]
    if not names:
        raise MocliError("no labels to rank: give at least one non-empty label")
    cached = {name: k for k, name in enumerate(net.labels)}
    text_emb = torch.zeros(len(names), int(cfg["text_dim"]))
    new = [i for i, name in enumerate(names) if name not in cached]
    for i, name in enumerate(names):
        if name in cached:
            text_emb[i] = net.text_head.label_emb[cached[name]].cpu()
    if new:
        embedder = embedder or get_embedder(cfg["text_model"])
        if embedder.name != cfg["text_model"] or embedder.dim != int(cfg["text_dim"]):
            raise MocliError(f"labels must be embedded with {cfg['text_model']}, not {embedder.name}")
        vectors = embedder.embed([label_text(names[i], cfg["prompt"]) for i in new])
        text_emb[new] = torch.from_numpy(vectors)
    if clips.ndim not in (4, 5) or clips.shape[-1] != 3:
        raise MocliError(f"clips must be (B, T, J, 3) or (B, M, T, J, 3), not {tuple(clips.shape)}")
    net.eval()
    runtime = Runtime(batch_size, next(net.parameters()).device, precision)
    emb = torch.from_numpy(run_batches(net.embed, clips, runtime)) if len(clips) else torch.zeros(0, text_emb.shape[1])
    sim = emb @ text_emb.T  # (B, K)
    probs = torch.softmax(sim / float(cfg["temperature"]), dim=-1)
    k = max(1, min(int(top_k), len(names)))
    top_p, top_i = probs.topk(k, dim=-1)
    return LabelRanking(names, sim, probs, top_i, [[names[j] for j in row] for row in top_i.tolist()], top_p)
