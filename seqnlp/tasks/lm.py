"""One-to-many and language modelling: predict each next token from the ones before.

``LanguageModel(embed, encoder, ...)`` reads tokens, runs a causal encoder and predicts the next
token at every position. The encoder is one of the lecture's three models:

* a recurrent network (``nn.LSTM``, ``nn.GRU`` or ``nn.RNN``, the simple Elman network), whose state
  is carried from one batch to the next in truncated back-propagation through time;
* :class:`CausalWindow`, the fixed-window MLP over the ``l`` previous tokens (one-to-one), whose
  "state" is the last ``l - 1`` embedded inputs, so it too reads a stream across batch boundaries.

One input generates a whole sequence (one-to-many): a prompt is read to set the state, or a condition
id (e.g. a style tag) initialises the state (``h_0 = tanh(E_cond[c])``, ``c_0 = 0``), and
:func:`generate` then samples one token at a time with temperature, top-k and top-p.

Batch tensors: ``inputs (B, T)``, ``targets (B, T)`` (inputs shifted by one; ``pad_id`` is ignored),
optional ``cond (B,)``. ``batch.meta["reset"]`` (default True) starts from a fresh state; when it is
False the state left by the previous ``loss`` call is carried over (detached). That carried state is
part of :meth:`LanguageModel.training_state`, which the Trainer checkpoints, so a resumed run goes on
exactly where it stopped.

:func:`stream_loss` and :func:`batches_loss` score a stream and separate sequences;
:func:`lstm_activations` gives an LSTM model's gates and cell state over a text (drawn by
:mod:`seqnlp.viz.gates`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..data.batching import Batch
from ..data.stream import stream_rows
from ..nn.dropout import Dropout
from ..nn.embeddings import Embeddings
from ..nn.lstm import from_torch
from ..nn.window import WindowEncoder
from ..search import filter_logits

__all__ = ["CausalWindow", "LanguageModel", "batches_loss", "generate", "lstm_activations", "stream_loss"]

RECURRENT = (nn.LSTM, nn.GRU, nn.RNN)


def _map(state, fn):
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(fn(s) for s in state)
    return fn(state)


class CausalWindow(nn.Module):
    """The lecture's fixed window as a streaming encoder: position t sees inputs ``t-l+1 .. t``.

    Args:
        mlp: a :class:`~seqnlp.nn.WindowEncoder` with ``window_left = l - 1``, ``window_right = 0``
            (``causal=False``: the window holds the current input, which already is the previous token
            of the target).

    ``forward(x (B, T, E), state (B, l-1, E) | None) -> (B, T, H), state``: the state holds the last
    ``l - 1`` inputs (zeros, i.e. "outside the text", at the start).
    """

    def __init__(self, mlp: WindowEncoder):
        super().__init__()
        if mlp.causal or mlp.window_right:
            raise ValueError("CausalWindow needs WindowEncoder(causal=False, window_right=0)")
        self.mlp = mlp
        self.context = mlp.window_left  # l - 1
        self.hidden_size = mlp.output_size

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        B, T, E = x.shape
        if state is None:
            state = x.new_zeros(B, self.context, E)
        ctx = torch.cat([state, x], dim=1)  # (B, l-1+T, E)
        out = self.mlp(ctx)[:, self.context :]  # (B, T, H)
        return out, ctx[:, ctx.size(1) - self.context :]


class LanguageModel(nn.Module):
    """Embed → causal encoder → dropout → (projection) → output layer.

    Args:
        embed: token embeddings, ``(B, T) -> (B, T, E)``.
        encoder: a batch-first unidirectional ``nn.LSTM``/``nn.GRU``/``nn.RNN`` or a :class:`CausalWindow`.
        vocab_size: output classes V.
        dropout: on the encoder output, before the output layer.
        tie_embeddings: share ``embed``'s table with the output layer (a linear projection H → E is
            added when the encoder's size H differs from E).
        num_conditions: size of the condition table whose rows initialise the state (0: none).
        pad_id: target id ignored by the loss.
    """

    def __init__(self, embed: Embeddings, encoder: nn.Module, vocab_size: int, dropout: float = 0.0,
                 tie_embeddings: bool = False, num_conditions: int = 0, pad_id: int = 0):
        super().__init__()
        if isinstance(encoder, RECURRENT):
            if not encoder.batch_first or encoder.bidirectional:
                raise ValueError("the encoder must be batch_first and unidirectional")
        elif not isinstance(encoder, CausalWindow):
            raise TypeError(f"unsupported encoder {type(encoder).__name__}")
        hidden = encoder.hidden_size
        self.embed = embed
        self.rnn = encoder
        self.dropout = Dropout(dropout)
        self.proj = nn.Linear(hidden, embed.dim) if tie_embeddings and hidden != embed.dim else None
        self.out = nn.Linear(embed.dim if tie_embeddings else hidden, vocab_size)
        if tie_embeddings:
            embed.tie(self.out)
        self.cond = None
        if num_conditions:
            if isinstance(encoder, CausalWindow):
                raise ValueError("the window model has no state for a condition to initialise")
            self.cond = nn.Embedding(num_conditions, encoder.num_layers * hidden)
        self.pad_id = pad_id
        self.vocab_size = vocab_size
        self._carry = None
        self.trained_tokens = 0  # targets seen by loss() in training mode (checkpointed with the carry)

    @property
    def state_dim(self) -> int:
        """The batch dimension of the state: 1 for RNNs ``(L, B, H)``, 0 for the window ``(B, l-1, E)``."""
        return 0 if isinstance(self.rnn, CausalWindow) else 1

    def init_state(self, batch_size: int, cond: Tensor | None = None):
        """Initial state: None (zeros), or from the condition ids ``cond (B,)``."""
        if cond is None or self.cond is None:
            if self.cond is not None:
                raise ValueError("this model was trained with conditions: give cond (B,)")
            return None
        L, H = self.rnn.num_layers, self.rnn.hidden_size
        h = torch.tanh(self.cond(cond)).view(-1, L, H).transpose(0, 1).contiguous()  # (L, B, H)
        return (h, torch.zeros_like(h)) if isinstance(self.rnn, nn.LSTM) else h

    def forward(self, inputs: Tensor, state=None) -> tuple[Tensor, object]:
        """inputs (B, T) → logits (B, T, V) and the next state (detach it to carry it over)."""
        h, state = self.rnn(self.embed(inputs), state)  # (B, T, H)
        h = self.dropout(h)
        if self.proj is not None:
            h = self.proj(h)
        return self.out(h), state

    # --- training: loss with the carried state ------------------------------------------------
    def loss(self, batch) -> tuple[Tensor, int]:
        """Mean cross-entropy over the non-pad targets, and their number."""
        B = batch.inputs.size(0)
        carry = self._carry
        first = carry[0] if isinstance(carry, tuple) else carry
        if batch.meta.get("reset", True) or first is None or first.size(self.state_dim) != B:
            state = self.init_state(B, batch.cond if "cond" in batch else None)
        else:
            state = _map(carry, lambda s: s.to(batch.inputs.device))
        logits, state = self(batch.inputs, state)
        self._carry = _map(state, lambda s: s.detach())
        n = int((batch.targets != self.pad_id).sum())
        if self.training:
            self.trained_tokens += n
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch.targets.flatten(), ignore_index=self.pad_id)
        return loss, n

    def training_state(self) -> dict:
        """The carried state (plain tensors) and the trained-token count, saved in the Trainer's checkpoints."""
        carry = self._carry
        parts = [] if carry is None else list(carry) if isinstance(carry, tuple) else [carry]
        return {"carry": [p.cpu() for p in parts], "carry_tuple": isinstance(carry, tuple),
                "trained_tokens": self.trained_tokens}

    def load_training_state(self, state: dict) -> None:
        parts = list(state.get("carry", []))
        self._carry = None if not parts else tuple(parts) if state.get("carry_tuple") else parts[0]
        self.trained_tokens = int(state.get("trained_tokens", 0))

    # --- search protocol (seqnlp.search): the state is the encoder's state ------------------
    def start(self, batch):
        """Read ``batch.inputs (B, P)`` (a prompt without its last token; P may be 0) from the initial
        state (from ``batch.cond`` when given); return the state."""
        state = self.init_state(len(batch.inputs), batch.cond if "cond" in batch else None)
        if batch.inputs.size(1):
            _, state = self(batch.inputs, state)
        return state

    def step(self, tokens: Tensor, state):
        """tokens (B,) → log-probs (B, V) of the next token, and the new state."""
        logits, state = self(tokens[:, None], state)
        return torch.log_softmax(logits[:, 0].float(), -1), state

    def reorder(self, state, index: Tensor):
        return _map(state, lambda s: s.index_select(self.state_dim, index))


@torch.no_grad()
def generate(model: LanguageModel, prompt: Tensor, max_new: int, *, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, cond: Tensor | None = None, eos: int | None = None,
             generator: torch.Generator | None = None, suppress: Sequence[int] = ()) -> Iterator[Tensor]:
    """Sample continuations one token at a time, for streaming them out as they come.

    Args:
        prompt: (N, P) ids, P >= 1: the first P - 1 are read, the last is the first input of sampling.
        max_new: tokens to sample per row.
        temperature, top_k, top_p: see :func:`seqnlp.search.sample` (the same draws for the same
            ``generator``: ``sample`` over a batch whose ``inputs`` are ``prompt[:, :-1]`` with
            ``bos = prompt[0, -1]`` gives the same tokens).
        cond: (N,) condition ids, for a conditioned model.
        eos: stop once every row has produced this id (None: never).
        generator: a seeded ``torch.Generator`` on the model's device makes the output reproducible.
        suppress: ids never sampled (e.g. ``<pad>`` and ``<s>``); their probability goes to the others.

    Yields:
        (N,) the next token of every row (rows that have ended keep producing tokens; callers drop
        what follows a row's ``eos``).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if prompt.dim() != 2 or prompt.size(1) < 1:
        raise ValueError(f"prompt must be (N, P) with P >= 1, got {tuple(prompt.shape)}")
    state = model.init_state(prompt.size(0), cond)
    if prompt.size(1) > 1:
        _, state = model(prompt[:, :-1], state)
    token = prompt[:, -1]
    ended = torch.zeros_like(token, dtype=torch.bool)
    banned = torch.tensor(list(suppress), dtype=torch.long, device=prompt.device)
    for _ in range(max_new):
        log_probs, state = model.step(token, state)
        if len(banned):
            log_probs = log_probs.index_fill(-1, banned, float("-inf"))
        logits = filter_logits(log_probs / temperature, top_k, top_p)
        token = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)
        yield token
        if eos is not None:
            ended |= token == eos
            if bool(ended.all()):
                return


@torch.no_grad()
def stream_loss(model: LanguageModel, ids: Tensor, num_rows: int, bptt: int, device: torch.device,
                progress: bool = False, desc: str = "evaluating") -> tuple[float, int]:
    """Mean negative log-likelihood (nats per token) of a stream, read as ``num_rows`` contiguous rows with
    the state carried through each row; returns ``(mean_nll, n_targets)``. The ``len(ids) % num_rows``
    last ids are left out; the first id of every row is only an input."""
    rows = stream_rows(ids, num_rows).to(device)
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    for start in tqdm(range(0, rows.size(1) - 1, bptt), desc=desc, disable=not progress, leave=False,
                      dynamic_ncols=True):
        inputs = rows[:, start : start + bptt]
        targets = rows[:, start + 1 : start + 1 + bptt]
        inputs = inputs[:, : targets.size(1)]
        logits, state = model(inputs, state)
        total += float(F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="sum"))
        count += targets.numel()
    model.train(was_training)
    return total / max(count, 1), count


@torch.no_grad()
def batches_loss(model: LanguageModel, batches: Iterable[Batch], device: torch.device) -> tuple[float, int]:
    """Mean nats per predicted token over batches of separate sequences (``inputs (B, T)``, ``targets (B, T)``
    with pad 0, optional ``cond (B,)``), each read from its initial (condition's) state; returns
    ``(mean_nll, n_targets)``."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        batch = batch.to(device)
        state = model.init_state(len(batch.inputs), batch.cond if model.cond is not None else None)
        logits, _ = model(batch.inputs, state)
        total += float(F.cross_entropy(logits.flatten(0, 1).float(), batch.targets.flatten(), ignore_index=0,
                                       reduction="sum"))
        count += int((batch.targets != 0).sum())
    model.train(was_training)
    return total / max(count, 1), count


@torch.no_grad()
def lstm_activations(embed: nn.Module, lstm: nn.LSTM, ids: Tensor, state=None) -> list[dict[str, Tensor]]:
    """Run the explicit-gates twin of ``lstm`` over one text.

    Args:
        embed: ids (1, T) → (1, T, E), in eval mode (no dropout).
        lstm: the trained batch-first ``torch.nn.LSTM`` (or a :class:`seqnlp.nn.LSTM`).
        ids: (T,) token ids.
        state: optional initial ``(h_0, c_0)``, each (L, 1, H).

    Returns:
        for each layer, ``{"forget", "input", "candidate", "output", "cell", "hidden"}``, each (T, H) on the CPU.
    """
    explicit = from_torch(lstm) if isinstance(lstm, nn.LSTM) else lstm
    explicit.eval()
    x = embed(ids.view(1, -1))
    _, _, acts = explicit(x, state, return_activations=True)
    return [{k: v[0].float().cpu() for k, v in layer.items()} for layer in acts]
