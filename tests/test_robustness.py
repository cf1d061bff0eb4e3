"""helpers.robustness (notebook 08): the aggregators against independent references, the attacks
as a tamper hook, and clear errors for bad input."""
import numpy as np
import pytest

from helpers import populations, robustness, simulation


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


def test_multi_krum_drops_the_outliers():
    rng = np.random.default_rng(1)
    honest = rng.normal(0, 0.1, size=(7, 20))
    attacked = np.vstack([honest, 50 + rng.normal(size=(3, 20))])
    np.testing.assert_allclose(robustness.multi_krum(attacked, np.ones(10), num_byzantine=3), honest.mean(axis=0))


def test_bad_input_gets_clear_errors():
    with pytest.raises(robustness.RobustnessInputError, match="unknown aggregator"):
        robustness.aggregator("mode")
    with pytest.raises(ValueError, match=r"\(clients, parameters\)"):
        simulation.weighted_mean(np.ones(5), np.ones(5))
    with pytest.raises(robustness.RobustnessInputError, match="weights"):
        robustness.coordinate_median(np.ones((3, 4)), np.ones(2))
    clients = populations.Clients([np.full((3, 28, 28), 255, np.uint8)], [np.array([1, 2, 3], np.int32)])
    with pytest.raises(robustness.RobustnessInputError, match=r"\[0, 0.5\)"):
        robustness.attack("boosted", 0.5, None, clients, 0)
    with pytest.raises(robustness.RobustnessInputError, match="unknown attack"):
        robustness.attack("ddos", 0.1, None, clients, 0)
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


def test_attacks_replace_the_honest_update_of_the_first_clients():
    honest = [simulation.Update(cid, np.array([1.0, -2.0, 0.5]) * (cid + 1), 10.0, 0) for cid in range(5)]
    sent = {name: robustness.attack(name, 0.4, None, None, seed=0)(honest, None, 0)
            for name in ("sign flip", "boosted", "weight inflation")}
    assert [u.delta.tolist() for u in sent["sign flip"][:3]] == [[-1.0, 2.0, -0.5], [-2.0, 4.0, -1.0], [3, -6, 1.5]]
    assert all(a is b for a, b in zip(sent["sign flip"][2:], honest[2:])), "two of five attack, the rest are honest"
    np.testing.assert_allclose(sent["boosted"][0].delta, -robustness.BOOST * honest[0].delta)
    assert [u.num_examples for u in sent["weight inflation"]] == [robustness.INFLATION * 10] * 2 + [10.0] * 3
    big = [simulation.Update(0, np.ones(10_000), 10.0, 0)]
    noise = robustness.attack("gaussian noise", 0.4, None, None, seed=0)(big * 3, None, 0)[0].delta
    assert abs(np.linalg.norm(noise) / np.linalg.norm(np.ones(10_000)) - robustness.BOOST) < 0.5
    later = robustness.attack("sign flip", 0.4, None, None, seed=0, attack_rounds=2)
    assert later(honest, None, 2) == honest, "no attack after attack_rounds"
