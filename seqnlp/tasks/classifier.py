"""Many-to-one: a whole sequence → one label (sentiment).

``SequenceClassifier(embed, encoder, num_classes, pooling)``: embeddings → shared (Bi)RNN
encoder → pooling over time → dropout → linear. ``pooling`` is one of :data:`POOLINGS` or several
joined by ``+`` (``"max+final"``: the pooled vectors are concatenated, as ULMFiT's concat pooling).
Batch tensors: ``src (B, T)``, ``src_lengths (B,)``, ``labels (B,)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.dropout import Dropout
from ..nn.embeddings import Embeddings
from ..nn.encoders import RNNEncoder

POOLINGS = ("final", "max", "mean", "attention")


def pooling_parts(pooling: str) -> list[str]:
    """``"max+final"`` → ``["max", "final"]``; raises ValueError on unknown or repeated names."""
    parts = [p.strip() for p in pooling.split("+")]
    bad = [p for p in parts if p not in POOLINGS]
    if bad or len(set(parts)) != len(parts):
        raise ValueError(f"pooling must be one of {POOLINGS} or several joined by '+', got {pooling!r}")
    return parts


class SequenceClassifier(nn.Module):
    """Args:
        embed: token embeddings (E).
        encoder: a (bi)directional :class:`RNNEncoder` over the embeddings (output size D).
        num_classes: size of the label set C.
        pooling: ``final`` (top layer's final states, directions concatenated), ``max``, ``mean``,
            ``attention`` (learned weights over time), or several joined by ``+``.
        dropout: before the output layer.
        word_dropout: during training, each real token is replaced by ``unk_id`` with this probability.
        unk_id, pad_id: ids of ``<unk>`` and ``<pad>``.
        adv_eps: > 0: adversarial training on the embeddings (Miyato et al. 2017, "Adversarial training
            methods for semi-supervised text classification"): :meth:`loss` adds the loss of the same batch
            with each example's embedded sequence moved along its loss gradient, by ``adv_eps`` times the
            batch's mean token-vector norm (in L2 over the whole sequence). One more forward and backward per step.

    Knowledge distillation (Hinton et al. 2015): when a training batch carries ``soft`` (B, C) target
    probabilities (a teacher's), :meth:`loss` is ``(1 - w) CE(labels) + w T² CE(soft, softmax(logits / T))``
    with ``w = distill_weight`` and ``T = distill_temperature`` (settings of the training run, not of the
    architecture: a checkpoint's model is rebuilt without them); examples labelled -1 (unlabelled text the
    teacher labelled) contribute ``T² CE(soft, ...)`` alone.
    """

    def __init__(self, embed: Embeddings, encoder: RNNEncoder, num_classes: int, pooling: str = "max",
                 dropout: float = 0.3, word_dropout: float = 0.0, unk_id: int = 1, pad_id: int = 0,
                 adv_eps: float = 0.0, distill_weight: float = 0.0, distill_temperature: float = 1.0):
        super().__init__()
        self.adv_eps = adv_eps
        self.distill_weight, self.distill_temperature = distill_weight, distill_temperature
        self.parts = pooling_parts(pooling)
        self.embed = embed
        self.encoder = encoder
        self.pooling = pooling
        self.word_dropout = word_dropout
        self.unk_id, self.pad_id = unk_id, pad_id
        d = encoder.output_size
        self.attn = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1, bias=False)) \
            if "attention" in self.parts else None
        self.dropout = Dropout(dropout)
        self.pooled_size = d * len(self.parts)
        self.head = nn.Linear(self.pooled_size, num_classes)

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def reset_head(self, num_classes: int) -> None:
        """A freshly initialised output layer for ``num_classes`` labels (fine-tuning on a new label set)."""
        self.head = nn.Linear(self.pooled_size, num_classes).to(self.head.weight.device)

    def pool(self, outputs: Tensor, mask: Tensor, final: Tensor) -> Tensor:
        """outputs (B, T, D), mask (B, T), final (B, D) → (B, D * number of pooling parts)."""
        pooled = []
        for part in self.parts:
            if part == "final":
                pooled.append(final)
            elif part == "max":
                pooled.append(outputs.masked_fill(~mask[..., None], torch.finfo(outputs.dtype).min).max(1).values)
            elif part == "mean":
                m = mask[..., None].to(outputs.dtype)
                pooled.append((outputs * m).sum(1) / m.sum(1).clamp(min=1))
            else:
                s = self.attn(outputs).squeeze(-1).masked_fill(~mask, torch.finfo(outputs.dtype).min)
                pooled.append(torch.bmm(torch.softmax(s, -1)[:, None], outputs)[:, 0])
        return pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=-1)

    def _embed(self, batch) -> Tensor:
        """Embedded tokens (B, T, E), after word dropout (training) and the embeddings' own dropout."""
        src = batch.src
        if self.training and self.word_dropout > 0:
            drop = (torch.rand(src.shape, device=src.device) < self.word_dropout) & (src != self.pad_id)
            src = src.masked_fill(drop, self.unk_id)
        return self.embed(src)

    def _classify(self, emb: Tensor, batch) -> Tensor:
        enc = self.encoder(emb, batch.src_lengths)
        pooled = self.pool(enc.outputs, enc.mask, enc.last_layer_final(self.encoder.num_directions))
        return self.head(self.dropout(pooled))

    def forward(self, batch) -> Tensor:
        """Logits (B, C)."""
        return self._classify(self._embed(batch), batch)

    def _loss_of(self, logits: Tensor, batch) -> Tensor:
        """Cross-entropy with the gold labels, mixed with the soft targets' when the batch has them; an example
        labelled -1 (a distillation transfer set's) has only its soft-target term."""
        logits = logits.float()
        if "soft" not in batch:
            return F.cross_entropy(logits, batch.labels)
        w, t = self.distill_weight, self.distill_temperature
        labelled = batch.labels >= 0
        hard = F.cross_entropy(logits, batch.labels.clamp(min=0), reduction="none")
        soft = -(batch.soft * F.log_softmax(logits / t, dim=-1)).sum(-1) * (t * t)
        return torch.where(labelled, (1 - w) * hard + w * soft, soft).mean()

    def loss(self, batch) -> tuple[Tensor, int]:
        emb = self._embed(batch)
        loss = self._loss_of(self._classify(emb, batch), batch)
        if not (self.training and self.adv_eps > 0 and torch.is_grad_enabled()):
            return loss, len(batch.labels)
        # One backward gives both the direction of the perturbation and the clean loss's parameter gradients;
        # the returned tensor's value is clean + adversarial loss, its gradient theirs (the clean part through
        # a surrogate whose gradient is the gradient just computed), so the caller's backward is the only other.
        params = [p for p in self.parameters() if p.requires_grad]
        g_emb, *g_params = torch.autograd.grad(loss, [emb, *params], retain_graph=True, allow_unused=True)
        mask = (batch.src != self.pad_id)[..., None]
        g = (g_emb * mask).float()
        size = self.adv_eps * emb.detach().float().norm(dim=-1)[mask[..., 0]].mean()
        r = size * g / g.flatten(1).norm(dim=1).clamp(min=1e-12)[:, None, None]
        adv = self._loss_of(self._classify(emb + r.to(emb.dtype), batch), batch)
        grads = [(p, gp) for p, gp in zip(params, g_params) if gp is not None]
        surrogate = sum((p * gp).sum() for p, gp in grads)
        return adv + (surrogate - surrogate.detach()) + loss.detach(), len(batch.labels)

    @torch.no_grad()
    def predict(self, batch) -> Tensor:
        """Class probabilities (B, C)."""
        return torch.softmax(self(batch).float(), dim=-1)
