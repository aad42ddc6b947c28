"""Stream batching for truncated BPTT: every target once per epoch, rows read in order, exact resume."""

from __future__ import annotations

import pytest
import torch

from seqnlp.data.stream import StreamBatches, StreamSampler, stream_rows


def test_rows_are_contiguous_pieces():
    ids = torch.arange(23)
    rows = stream_rows(ids, 4)
    assert rows.shape == (4, 5)
    assert rows[1].tolist() == [5, 6, 7, 8, 9]
    with pytest.raises(ValueError):
        stream_rows(torch.arange(5), 4)


@pytest.mark.parametrize("bptt", [1, 3, 7, 50])
def test_epoch_reads_each_row_in_order_once(bptt):
    ids = torch.arange(1, 101)  # 4 rows of 25
    batches = StreamBatches(ids, 4, bptt, shuffle=True, seed=5)
    for _ in range(3):  # three epochs, each with its own offset
        epoch = batches.sampler.epoch
        got = list(batches)
        assert got[0].meta["reset"] and not any(b.meta["reset"] for b in got[1:])
        inputs = torch.cat([b.inputs for b in got], 1)
        targets = torch.cat([b.targets for b in got], 1)
        offset = got[0].meta["start"]
        rows = ids.view(4, 25)
        assert torch.equal(inputs, rows[:, offset:24])  # contiguous, in order, no gap or repeat
        assert torch.equal(targets, rows[:, offset + 1 :])
        assert all(b.inputs.size(1) <= bptt and b.n_tokens["chars"] == b.targets.numel() for b in got)
        assert batches.sampler.epoch == epoch + 1


def test_offsets_differ_between_epochs_and_are_seeded():
    a = StreamSampler(1000, 50, seed=1)
    b = StreamSampler(1000, 50, seed=1)
    starts = []
    for _ in range(5):
        wa, wb = list(a), list(b)
        assert wa == wb
        starts.append(wa[0][0])
    assert len(set(starts)) > 1
    assert StreamSampler(1000, 50, shuffle=False).windows()[0] == (0, 50)


def test_resume_mid_epoch_gives_the_same_batches():
    ids = torch.randint(0, 9, (400,))
    full = StreamBatches(ids, 3, 10, seed=2)
    expected = [b.inputs for b in full] + [b.inputs for b in full]
    part = StreamBatches(ids, 3, 10, seed=2)
    it = iter(part)
    seen = [next(it).inputs for _ in range(4)]
    state = part.sampler.state_dict()
    resumed = StreamBatches(ids, 3, 10, seed=0)
    resumed.sampler.load_state_dict(state)
    rest = [b.inputs for b in resumed]
    assert resumed.batch(0, 1, reset=True).meta["reset"]
    rest += [b.inputs for b in resumed]
    assert all(torch.equal(x, y) for x, y in zip(seen + rest, expected))
    assert len(seen + rest) == len(expected)
