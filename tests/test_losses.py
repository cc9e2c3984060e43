"""Parity of every loss with the loop reference (values and gradients), and numerical safety."""

import pytest
import torch

from bft import losses
from tests import reference_losses as ref


def random_batch(batch, length, seed, hole_rate=0.2, prompt=3):
    """Log-probabilities with dense low-confidence spans, a prompt prefix, padding and masked holes."""
    g = torch.Generator().manual_seed(seed)
    logprobs = -torch.rand(batch, length, generator=g, dtype=torch.float64) * 0.5
    for b in range(batch):
        start = int(torch.randint(0, length, (1,), generator=g))
        logprobs[b, start : start + length // 4] -= 4 * torch.rand(1, generator=g, dtype=torch.float64)
    mask = torch.rand(batch, length, generator=g) > hole_rate
    mask[:, :prompt] = False
    lengths = torch.randint(prompt, length + 1, (batch,), generator=g)
    for b in range(batch):
        mask[b, lengths[b] :] = False
    return logprobs, mask


def assert_parity(fast_fn, ref_fn, logprobs, mask):
    fast_in = logprobs.clone().requires_grad_(True)
    ref_in = logprobs.clone().requires_grad_(True)
    fast, reference = fast_fn(fast_in), ref_fn(ref_in)
    fast.backward()
    reference.backward()
    torch.testing.assert_close(fast.double(), reference, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(fast_in.grad, ref_in.grad, rtol=1e-9, atol=1e-12)
    assert torch.isfinite(fast_in.grad).all()


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("num_items", [None, 57])
def test_sft_and_dft_match_reference(seed, num_items):
    logprobs, mask = random_batch(4, 23, seed)
    assert_parity(lambda x: losses.sft_loss(x, mask, num_items), lambda x: ref.sft_loss(x, mask, num_items),
                  logprobs, mask)
    assert_parity(lambda x: losses.dft_loss(x, mask, num_items), lambda x: ref.dft_loss(x, mask, num_items),
                  logprobs, mask)


@pytest.mark.parametrize("floor", [0.05, 0.3, 1.0])
@pytest.mark.parametrize("num_items", [None, 57])
def test_floored_dft_and_asft_match_reference(floor, num_items):
    """`token_weight_floor` raises DFT's token weights below it (at 1: every weight 1, DFT becomes SFT)."""
    logprobs, mask = random_batch(4, 23, seed=7)
    assert_parity(lambda x: losses.dft_loss(x, mask, num_items, floor),
                  lambda x: ref.dft_loss(x, mask, num_items, floor), logprobs, mask)
    assert_parity(lambda x: losses.asft_loss(x, mask, -2 * x, 0.1, num_items, floor),
                  lambda x: ref.asft_loss(x, mask, -2 * x, 0.1, num_items, floor), logprobs, mask)
    if floor == 1.0:
        torch.testing.assert_close(losses.dft_loss(logprobs, mask, num_items, floor),
                                   losses.sft_loss(logprobs, mask, num_items))
    with pytest.raises(ValueError, match="token_weight_floor"):
        losses.dft_loss(logprobs, mask, num_items, -0.1)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("num_items", [None, 57])
def test_eaft_and_asft_match_reference(seed, alpha, num_items):
    logprobs, mask = random_batch(4, 23, seed)
    g = torch.Generator().manual_seed(seed + 100)
    topk_entropy = torch.rand(mask.shape, generator=g, dtype=torch.float64)
    topk_entropy[~mask] = float("nan")  # whatever masked positions hold never reaches the loss
    assert_parity(lambda x: losses.eaft_loss(x, mask, topk_entropy, alpha, num_items),
                  lambda x: ref.eaft_loss(x, mask, topk_entropy, alpha, num_items), logprobs, mask)
    # ASFT: the KL term carries its own gradient, here a function of the log-probabilities (KL = -2 lp, say)
    assert_parity(lambda x: losses.asft_loss(x, mask, -2 * x, alpha, num_items),
                  lambda x: ref.asft_loss(x, mask, -2 * x, alpha, num_items), logprobs, mask)


def test_token_weight_floor_raises_small_weights_only():
    logprobs = torch.log(torch.tensor([[0.9, 0.01, 0.5, 0.001]], dtype=torch.float64))
    mask = torch.ones_like(logprobs, dtype=torch.bool)
    _, details = losses.bft_loss(logprobs, mask, group_size=2, token_weight_floor=0.1, return_details=True)
    torch.testing.assert_close(details.token_weights[0], torch.tensor([0.9, 0.1, 0.5, 0.1], dtype=torch.float64))


@pytest.mark.parametrize("group_size", [1, 3, 8, 40])  # 40 > every sample's length: one group per sample
@pytest.mark.parametrize("gamma", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("token_weighting", ["prob", "group_norm"])
@pytest.mark.parametrize("window_alignment", ["centered", "trailing"])
def test_bft_matches_reference(group_size, gamma, token_weighting, window_alignment):
    logprobs, mask = random_batch(5, 30, seed=group_size)
    mask[2] = False  # an empty sample: P_b = 0, s_b = 1, L_b = 0, not counted in N
    kwargs = dict(group_size=group_size, gamma=gamma, token_weighting=token_weighting,
                  window_alignment=window_alignment)
    assert_parity(lambda x: losses.bft_loss(x, mask, **kwargs), lambda x: ref.bft_loss(x, mask, **kwargs),
                  logprobs, mask)


@pytest.mark.parametrize("token_weighting", ["prob", "group_norm"])
def test_bft_packed_segments_match_reference(token_weighting):
    logprobs, mask = random_batch(2, 40, seed=7, prompt=0)
    segment_ids = torch.tensor([[0] * 9 + [1] * 15 + [2] * 16, [5] * 20 + [6] * 3 + [7] * 17])
    mask[segment_ids == 6] = False  # an empty packed segment
    kwargs = dict(group_size=4, gamma=1.5, token_weighting=token_weighting, segment_ids=segment_ids)
    assert_parity(lambda x: losses.bft_loss(x, mask, num_samples=11, **kwargs),
                  lambda x: ref.bft_loss(x, mask, num_samples=11, **kwargs), logprobs, mask)
    fast = losses.min_group_confidence(logprobs, mask, 4, segment_ids=segment_ids)
    torch.testing.assert_close(fast.double(), torch.tensor(ref.min_group_confidence(logprobs, mask, 4, segment_ids),
                                                           dtype=torch.float64), rtol=1e-6, atol=1e-7)
    assert fast.shape == (6,)


def test_packed_row_equals_the_same_sequences_padded():
    """docs/method.md: a packed row of three segments gives the same loss and gradient as the three sequences padded."""
    logprobs, mask = random_batch(1, 30, seed=3, prompt=0)
    segment_ids = torch.tensor([[0] * 8 + [1] * 12 + [2] * 10])
    padded_lp = torch.zeros(3, 12, dtype=torch.float64)
    padded_mask = torch.zeros(3, 12, dtype=torch.bool)
    for row, (a, b) in enumerate([(0, 8), (8, 20), (20, 30)]):
        padded_lp[row, : b - a] = logprobs[0, a:b]
        padded_mask[row, : b - a] = mask[0, a:b]
    packed_in = logprobs.clone().requires_grad_(True)
    padded_in = padded_lp.clone().requires_grad_(True)
    packed = losses.bft_loss(packed_in, mask, group_size=5, segment_ids=segment_ids)
    padded = losses.bft_loss(padded_in, padded_mask, group_size=5)
    (packed + padded).backward()
    torch.testing.assert_close(packed, padded)
    for row, (a, b) in enumerate([(0, 8), (8, 20), (20, 30)]):
        torch.testing.assert_close(packed_in.grad[0, a:b], padded_in.grad[row, : b - a])


def test_micro_batches_sum_to_the_full_batch():
    """With num_samples = the step's sample count, micro-batch losses add up to the whole batch's loss."""
    logprobs, mask = random_batch(6, 20, seed=11)
    whole = losses.bft_loss(logprobs, mask, group_size=4)
    for split in ([4, 2], [3, 3], [1, 5]):
        parts = torch.split(torch.arange(6), split)
        total = sum(losses.bft_loss(logprobs[i], mask[i], group_size=4, num_samples=6) for i in parts)
        torch.testing.assert_close(total, whole, rtol=1e-12, atol=0)


def test_min_group_confidence_hand_computed():
    lp = torch.log(torch.tensor([[0.9, 0.9, 0.1, 0.1, 0.9, 0.5]], dtype=torch.float64))
    mask = torch.tensor([[False, True, True, True, True, True]])
    # windows of 2 over trained positions [0.9, 0.1, 0.1, 0.9, 0.5]: the weakest is (0.1, 0.1) -> 0.1
    torch.testing.assert_close(losses.min_group_confidence(lp, mask, 2), torch.tensor([0.1]))
    # one window longer than the sample: the geometric mean of all five
    expected = (0.9 * 0.1 * 0.1 * 0.9 * 0.5) ** (1 / 5)
    torch.testing.assert_close(losses.min_group_confidence(lp, mask, 10), torch.tensor([expected], dtype=torch.float32))
    assert losses.min_group_confidence(lp, torch.zeros_like(mask), 2).tolist() == [0.0]


def test_sample_weight_rewards_dense_gaps_over_scattered_ones():
    """Same mean confidence, but a dense low span gets the larger sample weight: BFT's core claim."""
    dense = torch.log(torch.tensor([[0.9] * 6 + [0.05] * 4 + [0.9] * 6]))
    scattered = torch.log(torch.tensor([[0.9, 0.9, 0.9, 0.05] * 4]))
    mask = torch.ones(1, 16, dtype=torch.bool)
    _, dense_details = losses.bft_loss(dense, mask, group_size=4, return_details=True)
    _, scattered_details = losses.bft_loss(scattered, mask, group_size=4, return_details=True)
    # dense: the weakest window is four tokens at 0.05; scattered: every window is (0.9^3 * 0.05)^(1/4) = 0.437
    torch.testing.assert_close(dense_details.sample_weights, torch.tensor([0.95]))
    torch.testing.assert_close(scattered_details.sample_weights, torch.tensor([1 - (0.9**3 * 0.05) ** 0.25]))


def test_group_norm_keeps_dense_gaps_and_silences_isolated_noise():
    probs = torch.tensor([[0.9] * 6 + [0.05] * 8 + [0.9] * 2 + [0.9, 0.9, 0.05, 0.9, 0.9]])
    mask = torch.ones_like(probs, dtype=torch.bool)
    _, details = losses.bft_loss(probs.log(), mask, group_size=5, token_weighting="group_norm", return_details=True)
    w = details.token_weights[0]
    assert w[9] > 0.999  # inside the dense low span: kept in full, where DFT's weight would be 0.05
    torch.testing.assert_close(w[18], torch.tensor(0.05 / ((4 * 0.9 + 0.05) / 5)))  # isolated noise: 0.07


@pytest.mark.parametrize("fn", [
    losses.sft_loss, losses.dft_loss, losses.bft_loss,
    lambda x, m: losses.eaft_loss(x, m, torch.full_like(x, 0.5)),
    lambda x, m: losses.asft_loss(x, m, -x),
])
def test_numerically_safe(fn):
    logprobs = torch.tensor([[0.0, -1e4, -30.0, float("nan"), float("-inf")], [1e-7, -0.5, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False, False], [True, True, False, False, False]])
    x = logprobs.clone().requires_grad_(True)
    loss = fn(x, mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert (x.grad[~mask] == 0).all()
    # a batch without any trained position: a finite zero, connected to the graph
    y = logprobs.clone().requires_grad_(True)
    empty = fn(y, torch.zeros_like(mask))
    empty.backward()
    assert empty.item() == 0.0 and (y.grad == 0).all()


def test_no_gradient_through_the_weights():
    """The gradient of BFT is exactly -s_b w_t / (n_b N) on each trained token: the weights are constants."""
    logprobs, mask = random_batch(3, 12, seed=5)
    x = logprobs.clone().requires_grad_(True)
    loss, details = losses.bft_loss(x, mask, group_size=3, num_samples=4, return_details=True)
    loss.backward()
    per_token = details.sample_weights[:, None].double() * details.token_weights.double()
    expected = -per_token / (details.num_trained[:, None] + losses.EPS) / 4
    torch.testing.assert_close(x.grad, expected * mask, rtol=1e-6, atol=1e-9)


def test_bad_arguments_are_rejected():
    logprobs, mask = random_batch(2, 5, seed=0)
    with pytest.raises(ValueError, match="token_weighting"):
        losses.bft_loss(logprobs, mask, token_weighting="entropy")
    with pytest.raises(ValueError, match="group_size"):
        losses.bft_loss(logprobs, mask, group_size=0)
    with pytest.raises(ValueError, match="gamma"):
        losses.bft_loss(logprobs, mask, gamma=0.0)
