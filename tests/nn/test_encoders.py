"""Packed encoders, masked attention and the attention decoder."""

import pytest
import torch

from seqnlp.data.batching import Batch, pad
from seqnlp.nn import (
    BahdanauAttention,
    Embeddings,
    LSTMDecoder,
    LuongAttention,
    RNNEncoder,
)
from seqnlp.tasks.seq2seq import build_seq2seq


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "lstm_explicit"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_equals_each_sequence_alone(cell, bidirectional):
    torch.manual_seed(0)
    enc = RNNEncoder(5, 7, num_layers=2, cell=cell, bidirectional=bidirectional).double().eval()
    lengths = torch.tensor([4, 1, 6, 3])
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    x_padded = x.clone()
    for i, n in enumerate(lengths):
        x_padded[i, n:] = 1e3  # garbage in the padding must not matter
    out = enc(x_padded, lengths)
    assert out.mask.tolist() == [[t < n for t in range(6)] for n in lengths.tolist()]
    for i, n in enumerate(lengths.tolist()):
        alone = enc(x[i : i + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(out.outputs[i, :n], alone.outputs[0])
        assert torch.all(out.outputs[i, n:] == 0)
        torch.testing.assert_close(out.final_h[:, i], alone.final_h[:, 0])
        if out.final_c is not None:
            torch.testing.assert_close(out.final_c[:, i], alone.final_c[:, 0])


def test_explicit_cell_matches_fused_with_same_weights():
    fused = RNNEncoder(4, 6, num_layers=2, cell="lstm", bidirectional=True).double().eval()
    expl = RNNEncoder(4, 6, num_layers=2, cell="lstm_explicit", bidirectional=True).double().eval()
    expl.rnn.load_state_dict(fused.rnn.state_dict())
    x, lengths = torch.randn(3, 5, 4, dtype=torch.float64), torch.tensor([5, 2, 3])
    a, b = fused(x, lengths), expl(x, lengths)
    torch.testing.assert_close(a.outputs, b.outputs)
    torch.testing.assert_close(a.final_h, b.final_h)


@pytest.mark.parametrize("attn", [BahdanauAttention(6, 8, 5), LuongAttention(6, 8, "general"),
                                  LuongAttention(8, 8, "dot")])
def test_attention_masks_padding(attn):
    q_size = 8 if getattr(attn, "method", "") == "dot" else 6
    q, mem = torch.randn(2, 3, q_size), torch.randn(2, 4, 8)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    ctx, w = attn(q, mem, mask)
    assert ctx.shape == (2, 3, 8) and w.shape == (2, 3, 4)
    assert torch.all(w[0, :, 2:] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3))
    mem2 = mem.clone()
    mem2[0, 2:] = 99.0
    ctx2, _ = attn(q, mem2, mask)
    torch.testing.assert_close(ctx[0], ctx2[0])


def _batch():
    src, sl = pad([[5, 6, 7, 8], [9, 10]])
    tin, _ = pad([[2, 11, 12, 13], [2, 14]])
    tout, _ = pad([[11, 12, 13, 3], [14, 3]])
    return Batch({"src": src, "src_lengths": sl, "tgt_in": tin, "tgt_out": tout})


@pytest.mark.parametrize("input_feeding", [False, True])
@pytest.mark.parametrize("attention", ["bahdanau", "luong_general", "luong_dot", "none"])
def test_decoder_steps_equal_teacher_forced_forward(input_feeding, attention):
    m = build_seq2seq(20, 30, emb_size=8, hidden_size=8, dec_layers=2, attention=attention,
                      input_feeding=input_feeding, bidirectional=attention != "luong_dot").double().eval()
    b = _batch()
    logits, _ = m(b)
    state = m.start(b)
    steps = []
    for t in range(b.tgt_in.shape[1]):
        lp, state = m.step(b.tgt_in[:, t], state)
        steps.append(lp)
    torch.testing.assert_close(torch.stack(steps, 1), torch.log_softmax(logits, -1))


def test_fused_forward_makes_one_lstm_call_without_input_feeding():
    m = build_seq2seq(20, 30, emb_size=8, hidden_size=8, input_feeding=False)
    calls = []
    m.decoder.rnn.register_forward_hook(lambda *a: calls.append(1))
    m(_batch())
    assert len(calls) == 1


def test_tied_embeddings_share_storage_and_loss_ignores_padding():
    m = build_seq2seq(20, 30, emb_size=8, hidden_size=8, tie_embeddings=True, label_smoothing=0.0)
    assert m.decoder.out.weight is m.decoder.embed.weight
    b = _batch()
    loss, n = m.loss(b)
    assert n == 6 and torch.isfinite(loss)
    with pytest.raises(ValueError, match="cannot tie"):
        LSTMDecoder(Embeddings(30, 8), 8, 1, 16, None, False, output_size=4, vocab_size=30, tie_embeddings=True)


def _expanded(state, index):
    """``state.reorder(index)`` done the long way: every row gets its own copy of its sentence's memory."""
    from seqnlp.nn.decoders import DecoderState

    per = state.h.size(1) // state.memory.size(0)
    src = index // per
    return DecoderState(state.h[:, index], state.c[:, index], None if state.feed is None else state.feed[index],
                        state.memory[src], state.mask[src], None if state.keys is None else state.keys[src],
                        state.src_id[index])


@pytest.mark.parametrize("attention", ["bahdanau", "luong_general", "luong_dot"])
def test_beam_rows_share_their_sentence_memory_and_step_as_if_each_had_a_copy(attention):
    """Beam expansion keeps one memory row per sentence (no copy, no reorder while hypotheses move within
    their sentences); steps on the shared memory equal steps where every row has its own copy."""
    m = build_seq2seq(20, 30, emb_size=8, hidden_size=8, attention=attention, input_feeding=True,
                      bidirectional=attention != "luong_dot").double().eval()
    state = m.start(_batch())  # 2 sentences, source lengths 4 and 2
    k = 3
    beams = m.reorder(state, torch.arange(2).repeat_interleave(k))
    assert beams.h.size(1) == 6 and beams.memory is state.memory and beams.keys is state.keys
    ref = _expanded(state, torch.arange(2).repeat_interleave(k))
    g = torch.Generator().manual_seed(0)
    cases = [(torch.tensor([2, 0, 1, 5, 5, 3]), 2),  # hypotheses reshuffled within their sentences: kept as is
             (torch.tensor([0, 0, 1, 3]), 4),  # runs of unequal length (3 rows, 1 row): one memory row per row
             (torch.tensor([3, 3, 3]), 1)]  # one sentence left, expanded again: one shared row
    for index, memory_rows in cases:
        tokens = torch.randint(4, 30, (beams.h.size(1),), generator=g)
        lp, beams = m.step(tokens, beams)
        lp_ref, ref = m.step(tokens, ref)
        torch.testing.assert_close(lp, lp_ref)
        torch.testing.assert_close(beams.h, ref.h)
        before = beams.memory
        beams, ref = m.reorder(beams, index), m.reorder(ref, index)
        assert beams.memory.size(0) == memory_rows
        assert (beams.memory is before) == (memory_rows == 2)
    lp, _ = m.step(torch.tensor([5, 6, 7]), beams)
    lp_ref, _ = m.step(torch.tensor([5, 6, 7]), ref)
    torch.testing.assert_close(lp, lp_ref)
