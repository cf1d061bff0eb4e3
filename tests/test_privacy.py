"""helpers.privacy (notebook 07): secure aggregation's arithmetic, the accountants, the measurements,
and clear errors for bad input."""
import math
import random

import numpy as np
import pytest

from helpers import privacy, runtime


def test_fixed_point_round_trip_and_sum_within_resolution():
    rng = np.random.default_rng(0)
    values = np.clip(rng.normal(0, 0.3, size=(5, 1000)), -1.0, 1.0)  # within the clip: no value is clipped
    total = np.zeros(1000, np.uint32)
    for row in values:
        total = total + privacy.encode(row, 1.0, num_clients=5)
    step = privacy.resolution(1.0, num_clients=5)
    assert np.abs(privacy.decode(total, 1.0, num_clients=5) - values.sum(0)).max() <= 5 * step / 2 + 1e-15
    # values beyond the clip are clipped, never wrapped into the other sign
    clipped = privacy.decode(privacy.encode([5.0, -5.0], 1.0), 1.0)
    np.testing.assert_allclose(clipped, [1.0, -1.0], atol=1e-8)


def test_encode_refuses_non_finite_updates_and_bad_clip():
    with pytest.raises(privacy.PrivacyInputError, match="non-finite"):
        privacy.encode([0.1, np.nan, np.inf], 1.0)
    with pytest.raises(privacy.PrivacyInputError, match="clip must be positive"):
        privacy.encode([0.1], 0.0)


def test_shamir_any_threshold_shares_rebuild_the_secret_and_fewer_refuse():
    rng = random.Random(1)
    secret = rng.randrange(privacy.PRIME)
    shares = privacy.share(secret, 3, 6, rng)
    assert privacy.reconstruct(shares[2:5], 3) == secret
    assert privacy.reconstruct([shares[5], shares[0], shares[3]], 3) == secret
    with pytest.raises(privacy.PrivacyInputError, match="at least 3"):
        privacy.reconstruct(shares[:2], 3)


def test_secure_aggregation_sum_exact_with_dropouts_and_masked_inputs_look_uniform():
    rng = np.random.default_rng(2)
    updates = rng.normal(0, 0.1, size=(8, 4000))
    protocol = privacy.SecureAggregation(8, 5, rng=random.Random(2))
    sent = {u: protocol.masked_input(u, privacy.encode(updates[u], 1.0, num_clients=8)) for u in range(8)}
    survivors = {u: y for u, y in sent.items() if u not in (1, 6)}
    total = privacy.decode(protocol.unmask(survivors), 1.0, num_clients=8)
    expected = updates[sorted(survivors)].sum(0)
    assert np.abs(total - expected).max() <= 8 * privacy.resolution(1.0, num_clients=8)
    assert privacy.uniformity_pvalue(sent[0]) > 1e-4
    # an unmasked encoding of small values is far from uniform: the test can fail
    assert privacy.uniformity_pvalue(privacy.encode(updates[0], 1.0, num_clients=8)) < 1e-6
    with pytest.raises(privacy.PrivacyInputError, match="needs 5"):
        protocol.unmask({u: sent[u] for u in range(4)})
    with pytest.raises(privacy.PrivacyInputError, match="threshold"):
        privacy.SecureAggregation(3, 4)


def test_accountants_match_the_figures_checked_by_hand():
    # dp-accounting 0.4.3, noise 1.0, 15 rounds, delta 1e-3, 20 of 90 clients (TFF_FACTS, checked 2026-12-03)
    assert privacy.epsilon(1.0, 15, 1e-3, q=20 / 90) == pytest.approx(5.04, abs=0.01)
    fixed = privacy.epsilon(1.0, 15, 1e-3, sampling="fixed", population=90, clients_per_round=20)
    assert fixed == pytest.approx(8.57, abs=0.01)
    assert privacy.epsilon(1.0, 15, 1e-3, sampling="none") == pytest.approx(20.46, abs=0.01)
    # TFF's DP tutorial reports (2, 1e-5)-DP for noise 1.2, 120 of 3,383 clients, 100 rounds
    assert privacy.epsilon(1.2, 100, 1e-5, q=120 / 3383) == pytest.approx(2.0, abs=0.05)
    pld = privacy.epsilon(1.0, 15, 1e-3, q=20 / 90, accountant="pld")
    assert pld < privacy.epsilon(1.0, 15, 1e-3, q=20 / 90)  # PLD is the tighter accountant
    assert privacy.epsilon(0.0, 15, 1e-3, q=0.5) == math.inf
    assert privacy.tree_epsilon(2.0, 100, 1e-5) < privacy.tree_epsilon(1.0, 100, 1e-5)


@pytest.mark.parametrize("kwargs,message", [
    (dict(delta=0.0), "δ must be in"),
    (dict(delta=1.5), "δ must be in"),
    (dict(noise_multiplier=-1.0), "noise multiplier"),
    (dict(q=1.5), "sampling rate"),
    (dict(sampling="sometimes"), "unknown sampling"),
    (dict(accountant="moments"), "unknown accountant"),
    (dict(sampling="fixed", population=10, clients_per_round=2, accountant="pld"), "no fixed-size"),
])
def test_accountant_inputs_out_of_range_get_clear_errors(kwargs, message):
    arguments = dict(noise_multiplier=1.0, rounds=10, delta=1e-5, q=0.1) | kwargs
    with pytest.raises(privacy.PrivacyInputError, match=message):
        privacy.epsilon(**arguments)


def test_psnr_roc_auc_and_the_dp_bound_on_auc():
    image = np.linspace(0, 1, 784).reshape(28, 28)
    assert privacy.psnr(image, image) == math.inf
    assert privacy.psnr(image + 0.1, image) == pytest.approx(20.0)
    fpr, tpr, auc = privacy.roc_auc([3, 4, 5], [0, 1, 2])
    assert auc == 1.0 and tpr[-1] == 1.0 and fpr[-1] == 1.0
    assert privacy.roc_auc([1, 2], [1, 2])[2] == 0.5
    assert privacy.auc_bound(0.0001, 1e-9) == pytest.approx(0.5, abs=1e-3)
    assert 0.5 < privacy.auc_bound(1.0, 1e-5) < privacy.auc_bound(2.0, 1e-5) < 1.0
    assert privacy.auc_bound(math.inf, 1e-5) == 1.0


def test_check_explains_and_raises_only_when_strict(monkeypatch, capsys):
    monkeypatch.setattr(runtime, "STRICT", False)
    runtime.check(True, "held")
    runtime.check(False, "loss falls", "the rate may be too high")  # explains, does not raise
    out = capsys.readouterr().out
    assert "✓ held" in out and "⚠ expected: loss falls" in out and "why: the rate may be too high" in out
    monkeypatch.setattr(runtime, "STRICT", True)
    with pytest.raises(runtime.CheckFailed, match="loss falls"):
        runtime.check(False, "loss falls", "the rate may be too high")
