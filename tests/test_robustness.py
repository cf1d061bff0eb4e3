"""helpers.robustness (notebook 08): the aggregators against independent references, Krum fooled
by ALIE but not by distant outliers, the adaptive attacks against hand computations, a fixed
compromised set, and clear errors for bad input."""
import numpy as np
import pytest

from helpers import fedavg, populations, robustness, simulation


def test_aggregators_against_independent_references():
    rng = np.random.default_rng(0)
    updates, weights = rng.normal(size=(7, 40)), rng.uniform(1, 9, size=7)
    np.testing.assert_allclose(simulation.weighted_mean(updates, weights),
                               np.average(updates, axis=0, weights=weights))
    np.testing.assert_allclose(robustness.unweighted_mean(updates, weights), updates.mean(axis=0))
    np.testing.assert_allclose(robustness.coordinate_median(updates, weights), np.sort(updates, axis=0)[3])  # 7 rows
    np.testing.assert_allclose(robustness.coordinate_median(updates[:6], weights[:6]),
                               np.sort(updates[:6], axis=0)[2:4].mean(axis=0))
    trimmed = np.array([np.sort(column)[2:5].mean() for column in updates.T])  # 7 rows, 30 %: cut 2 each end
    np.testing.assert_allclose(robustness.trimmed_mean(updates, weights), trimmed)
    norms = np.linalg.norm(updates, axis=1)
    clipped = [u * min(1, np.median(norms) / n) for u, n in zip(updates, norms)]
    np.testing.assert_allclose(robustness.norm_clipped_mean(updates, weights),
                               np.average(clipped, axis=0, weights=weights))


def krum_choice(updates, num_byzantine):
    """Multi-Krum's chosen rows, written out with loops (an independent reference)."""
    n = len(updates)
    scores = []
    for i in range(n):
        distances = sorted(float(np.sum((updates[i] - updates[j]) ** 2)) for j in range(n) if j != i)
        scores.append(sum(distances[:n - num_byzantine - 2]))
    return sorted(sorted(range(n), key=lambda i: scores[i])[:n - num_byzantine])


def test_multi_krum_drops_distant_outliers_but_not_alie():
    rng = np.random.default_rng(1)
    honest = rng.normal(0, 1, size=(7, 50))  # honest updates about 10 apart
    spread = honest.std(axis=0)
    # three attackers about as far from the honest mean as 2.5 honest standard deviations, each its own
    distant = honest.mean(axis=0) + 2.5 * spread + rng.normal(0, 0.3, size=(3, 50))
    attacked = np.vstack([honest, distant])
    assert krum_choice(attacked, 3) == list(range(7)), "Krum keeps the seven honest updates"
    np.testing.assert_allclose(robustness.multi_krum(attacked, np.ones(10), num_byzantine=3), honest.mean(axis=0))
    # ALIE: the same three attackers sit at mean − z·std, closer to everyone than honest updates are
    alie = np.repeat(robustness.alie_update(honest, 10, 3)[None], 3, axis=0)
    fooled = np.vstack([honest, alie])
    chosen = krum_choice(fooled, 3)
    assert {7, 8, 9} <= set(chosen), f"Krum picks the ALIE updates: chose {chosen}"
    np.testing.assert_allclose(robustness.multi_krum(fooled, np.ones(10), num_byzantine=3),
                               fooled[chosen].mean(axis=0))


def test_krum_selection_keeps_min_max_and_drops_boosted():
    """The filtering notebook 08 measures in a real round, on made-up updates: multi-Krum's kept
    rows match the loop reference; three min-max updates are kept, three boosted ones are not."""
    rng = np.random.default_rng(3)
    honest = rng.normal(0.5, 1, size=(7, 50))
    for attackers, expected in ((np.repeat(robustness.min_max_update(honest)[None], 3, axis=0), True),
                                (-robustness.BOOST * honest[:3], False)):
        rows = np.vstack([honest, attackers])
        kept = robustness.krum_selection(rows, 3)
        assert sorted(kept.tolist()) == krum_choice(rows, 3)
        assert ({7, 8, 9} <= set(kept.tolist())) is expected, f"kept {kept}"
    with pytest.raises(robustness.RobustnessInputError, match="updates must be"):
        robustness.krum_selection(np.ones(12), 3)


def test_multi_krum_refuses_too_few_updates():
    rng = np.random.default_rng(2)
    with pytest.raises(robustness.RobustnessInputError, match=r"more than 2f \+ 2 = 8 updates"):
        robustness.multi_krum(rng.normal(size=(8, 5)), np.ones(8), num_byzantine=3)
    with pytest.raises(robustness.RobustnessInputError, match="got 4"):
        robustness.multi_krum(rng.normal(size=(4, 5)), np.ones(4), num_byzantine=1)
    assert robustness.multi_krum(rng.normal(size=(9, 5)), np.ones(9), num_byzantine=3).shape == (5,)


def test_alie_update_by_hand():
    honest = np.array([[1.0, 4.0], [3.0, 4.0], [2.0, 10.0], [2.0, 6.0]])
    # n = 10 clients, m = 2 attackers: s = ⌊10/2 + 1⌋ − 2 = 4 supporters, z = Φ⁻¹(6/10) = 0.2533...
    assert abs(robustness.alie_z(10, 2) - 0.2533471031357997) < 1e-12
    assert robustness.alie_z(10, 1) == 0.0  # s = 5: z = Φ⁻¹(1/2), the plain mean
    assert abs(robustness.alie_z(10, 6) - 1.2815515655446004) < 1e-12  # a majority: at least one supporter
    # mean (2, 6); std with ddof 0: sqrt(((1+1+0+0)/4), ((4+4+16+0)/4)) = (sqrt(0.5), sqrt(6))
    expected = [2 - 0.2533471031357997 * 0.5**0.5, 6 - 0.2533471031357997 * 6**0.5]
    np.testing.assert_allclose(robustness.alie_update(honest, 10, 2), expected, rtol=1e-12)


def test_min_max_update_stays_within_the_honest_spread_and_no_further():
    rng = np.random.default_rng(3)
    honest = rng.normal(size=(8, 30)) * rng.uniform(0.5, 2, size=30)
    sent = robustness.min_max_update(honest)
    largest = max(np.linalg.norm(a - b) for a in honest for b in honest)
    direction = -honest.mean(axis=0) / np.linalg.norm(honest.mean(axis=0))

    def farthest(gamma):
        return max(np.linalg.norm(honest.mean(axis=0) + gamma * direction - h) for h in honest)

    low, high = 0.0, 1.0  # bisection on γ, as the paper searches for it
    while farthest(high) <= largest:
        high *= 2
    for _ in range(60):
        low, high = ((low + high) / 2, high) if farthest((low + high) / 2) <= largest else (low, (low + high) / 2)
    np.testing.assert_allclose(sent, honest.mean(axis=0) + low * direction, rtol=1e-7)
    assert low > np.linalg.norm(honest.mean(axis=0)), "spread-out honest updates leave room to reverse the mean"
    assert abs(max(np.linalg.norm(sent - h) for h in honest) - largest) < 1e-6 * largest


def test_a_fixed_compromised_set():
    compromised = robustness.compromised_clients(90, 0.2, seed=5)
    assert len(compromised) == 18 and compromised <= set(range(90))
    assert compromised == robustness.compromised_clients(90, 0.2, seed=5), "the same set for a seed"
    assert compromised != robustness.compromised_clients(90, 0.2, seed=6)
    per_round = [len(set(fedavg.sample_clients(range(90), 10, r, 5)) & compromised) for r in range(40)]
    assert len(set(per_round)) > 2 and 0 in per_round, f"the count varies with sampling: {per_round}"
    # the hook changes exactly the compromised clients' updates, in every round they are sampled
    honest = [simulation.Update(cid, np.full(3, float(cid + 1)), 10.0, 0) for cid in (4, 7, 1, 9, 2)]
    sent = robustness.attack("sign flip", {7, 2, 50}, None, None, seed=0)(honest, None, 0)
    assert [u.delta[0] for u in sent] == [5.0, -8.0, 2.0, 10.0, -3.0]
    assert robustness.attack("sign flip", {50}, None, None, seed=0)(honest, None, 3) == honest
    # joins: an absent attacker takes the place of the first honest client
    joined = robustness.attack("sign flip", {50}, None, None, seed=0, joins=True)(honest, None, 0)
    assert [u.cid for u in joined] == [50, 7, 1, 9, 2] and joined[0].delta[0] == -5.0


def test_adaptive_attacks_send_one_update_from_the_honest_ones():
    rng = np.random.default_rng(4)
    honest = [simulation.Update(cid, rng.normal(size=6), 10.0 + cid, 0) for cid in range(10)]
    rows = np.array([u.delta for u in honest if u.cid not in (2, 5)])
    alie = robustness.attack("ALIE", {2, 5}, None, None, seed=0)(honest, None, 0)
    for i in (2, 5):
        np.testing.assert_allclose(alie[i].delta, robustness.alie_update(rows, 10, 2))
        assert alie[i].num_examples == honest[i].num_examples
    assert all(alie[i] is honest[i] for i in range(10) if i not in (2, 5))
    minmax = robustness.attack("min-max", {2, 5}, None, None, seed=0)(honest, None, 0)
    np.testing.assert_allclose(minmax[5].delta, robustness.min_max_update(rows))


def test_bad_input_gets_clear_errors():
    with pytest.raises(robustness.RobustnessInputError, match="unknown aggregator"):
        robustness.aggregator("mode")
    with pytest.raises(ValueError, match=r"\(clients, parameters\)"):
        simulation.weighted_mean(np.ones(5), np.ones(5))
    with pytest.raises(robustness.RobustnessInputError, match="weights"):
        robustness.coordinate_median(np.ones((3, 4)), np.ones(2))
    clients = populations.Clients([np.full((3, 28, 28), 255, np.uint8)], [np.array([1, 2, 3], np.int32)])
    with pytest.raises(robustness.RobustnessInputError, match=r"\[0, 0.5\)"):
        robustness.compromised_clients(90, 0.5, 0)
    with pytest.raises(robustness.RobustnessInputError, match="compromised_clients"):
        robustness.attack("boosted", 0.2, None, clients, 0)
    with pytest.raises(robustness.RobustnessInputError, match="unknown attack"):
        robustness.attack("ddos", {1}, None, clients, 0)
    with pytest.raises(robustness.RobustnessInputError, match="unknown poisoning"):
        robustness.poisoned(clients, 0, "swap")


def test_poisoning_and_trigger():
    pixels = np.full((4, 28, 28), 255, np.uint8)
    clients = populations.Clients([pixels], [np.array([1, 2, 3, 9], np.int32)])
    assert robustness.poisoned(clients, 0, "label flip").labels[0].tolist() == [8, 7, 6, 0]
    backdoored = robustness.poisoned(clients, 0, "backdoor", target=0)
    assert backdoored.labels[0].tolist() == [0, 2, 0, 9]
    assert (backdoored.pixels[0][0, 22:26, 22:26] == 0).all() and (backdoored.pixels[0][1] == 255).all()
    assert (robustness.add_trigger(pixels)[:, 22:26, 22:26] == 0).all() and (pixels == 255).all()  # a copy


def test_naive_attacks():
    honest = [simulation.Update(cid, np.array([1.0, -2.0, 0.5]) * (cid + 1), 10.0, 0) for cid in range(5)]
    sent = {name: robustness.attack(name, {0, 1}, None, None, seed=0)(honest, None, 0)
            for name in ("sign flip", "boosted", "weight inflation")}
    assert [u.delta.tolist() for u in sent["sign flip"][:3]] == [[-1.0, 2.0, -0.5], [-2.0, 4.0, -1.0], [3, -6, 1.5]]
    assert all(a is b for a, b in zip(sent["sign flip"][2:], honest[2:])), "two of five attack, the rest are honest"
    np.testing.assert_allclose(sent["boosted"][0].delta, -robustness.BOOST * honest[0].delta)
    assert [u.num_examples for u in sent["weight inflation"]] == [robustness.INFLATION * 10] * 2 + [10.0] * 3
    big = [simulation.Update(cid, np.ones(10_000), 10.0, 0) for cid in range(3)]
    noise = robustness.attack("gaussian noise", {0}, None, None, seed=0)(big, None, 0)[0].delta
    assert abs(np.linalg.norm(noise) / np.linalg.norm(np.ones(10_000)) - robustness.BOOST) < 0.5
    later = robustness.attack("sign flip", {0, 1}, None, None, seed=0, attack_rounds=2)
    assert later(honest, None, 2) == honest, "no attack after attack_rounds"
