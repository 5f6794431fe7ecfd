import pytest
import torch

from liveworld.model.memory import MemoryBank, summarize, unit_grid


def frame_units(value: float, B: int = 1) -> torch.Tensor:
    return summarize(torch.full((B, 4, 4, 6), value), 2)


def test_summarize_cuts_the_grid_into_patches():
    video = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(1, 2, 4, 6)
    tokens = summarize(video, 2)
    assert tokens.shape == (1, 6, 2 * 2 * 2)
    # the first token holds channel 0's top-left 2x2 patch, then channel 1's
    assert tokens[0, 0].tolist() == [0, 1, 6, 7, 24, 25, 30, 31]
    rows, cols = unit_grid((4, 6), 2)
    assert rows.tolist() == [1, 1, 1, 3, 3, 3] and cols.tolist() == [1, 3, 5, 1, 3, 5]
    with pytest.raises(ValueError, match="must divide"):
        summarize(torch.zeros(1, 2, 5, 6), 2)


@pytest.mark.parametrize("rule", ["recency", "novelty"])
def test_capacity_is_never_exceeded(rule):
    bank = MemoryBank(2, capacity=3, tokens=6, features=16, rule=rule)
    for f in range(20):
        bank.add(f, frame_units(float(f % 5), B=2) + torch.randn(2, 6, 16) * 0.01)
        assert len(bank) <= 3 and bank.tokens.shape[1] == 3
        assert bank.valid().sum(1).max() <= 3


def test_recency_keeps_the_newest_units():
    bank = MemoryBank(1, capacity=3, tokens=6, features=16, rule="recency", stride=2)
    for f in range(12):
        bank.add(f, frame_units(float(f)))
    assert sorted(bank.frame[0].tolist()) == [6, 8, 10]  # every second frame, the last three
    inp = bank.inputs(first_frame=12)
    assert sorted(inp.frame[0].tolist()) == [-6, -4, -2] and inp.valid.all()


def test_novelty_drops_a_copy_and_keeps_a_rare_view():
    bank = MemoryBank(1, capacity=3, tokens=6, features=16, rule="novelty")
    bank.add(0, frame_units(5.0))  # a rare view
    bank.add(1, frame_units(0.0))  # a corridor ...
    bank.add(2, frame_units(1.0))
    slot = bank.add(3, frame_units(0.0))  # ... seen again: the older copy of it leaves
    assert sorted(bank.frame[0].tolist()) == [0, 2, 3] and slot.item() == 1
    slot = bank.add(4, frame_units(5.0) + 1e-3)  # equally redundant with frame 0: the older leaves
    assert 0 not in bank.frame[0].tolist() and 4 in bank.frame[0].tolist()


def test_an_empty_bank_reads_as_invalid_slots():
    bank = MemoryBank(2, capacity=4, tokens=6, features=16)
    bank.add(0, frame_units(1.0, B=2))
    inp = bank.inputs(first_frame=5)
    assert inp.valid.tolist() == [[True, False, False, False]] * 2 and inp.frame[0, 0] == -5


@pytest.mark.parametrize("rule", ["recency", "novelty"])
def test_prefix_bank_equals_streaming_the_frames(rule):
    from liveworld.model.memory import bank_of_prefix

    video = torch.randn(23, 4, 4, 6)
    video[10] = video[2]  # a revisit
    fast = bank_of_prefix(video, capacity=4, patch=2, rule=rule, stride=2)
    slow = MemoryBank(1, 4, 6, 16, rule=rule, stride=2)
    for f in range(23):
        slow.add(f, summarize(video[f:f + 1], 2))
    assert sorted(fast.frame[0].tolist()) == sorted(slow.frame[0].tolist())


def test_rows_fill_at_their_own_pace():
    a = MemoryBank(1, 2, 6, 16)
    a.add(0, frame_units(1.0))
    b = MemoryBank(1, 2, 6, 16)
    both = MemoryBank.stack([a, b])
    both.add(1, frame_units(2.0, B=2))
    both.add(2, frame_units(3.0, B=2))
    assert both.frame.tolist() == [[2, 1], [1, 2]] and both.count.tolist() == [2, 2]


def test_gathered_and_masked_sparse_reads_agree():
    from liveworld.model.attention import MemoryRead, attend

    torch.manual_seed(0)
    B, H, Dh, m, U, T, N = 2, 2, 8, 3, 5, 2, 4
    Lk = T + U * m + N
    q, k, v = torch.randn(B, H, N, Dh), torch.randn(B, H, Lk, Dh), torch.randn(B, H, Lk, Dh)
    read = MemoryRead(T, U, m, ((0, N),), top_k=2)
    gathered = attend(q, k, v, None, read)
    # the masked form: the same queries placed after other rows that do not read memory
    q2 = torch.cat([torch.randn(B, H, 3, Dh), q], 2)
    read2 = MemoryRead(T, U, m, ((3, N),), top_k=2)
    masked = attend(q2, k, v, torch.ones(1, 1, 3 + N, Lk, dtype=torch.bool), read2)[:, :, 3:]
    assert torch.allclose(gathered, masked, atol=1e-5)
    dense = attend(q, k, v, None, MemoryRead(T, U, m, ((0, N),), top_k=0))
    assert (dense - gathered).abs().max() > 1e-3
