"""helpers.robustness (notebook 08): the aggregators against independent references, the attacks,
the fast trainer against the course's client_update, and clear errors for bad input."""
import collections

import numpy as np
import pytest
import tensorflow as tf

from helpers import experiments as ex, robustness as rb
from helpers.fedavg import client_update
from helpers.model import create_model


def test_aggregators_against_independent_references():
    rng = np.random.default_rng(0)
    updates, weights = rng.normal(size=(7, 40)), rng.uniform(1, 9, size=7)
    np.testing.assert_allclose(rb.weighted_mean(updates, weights), np.average(updates, axis=0, weights=weights))
    np.testing.assert_allclose(rb.unweighted_mean(updates, weights), updates.mean(axis=0))
    np.testing.assert_allclose(rb.coordinate_median(updates, weights), np.median(updates, axis=0))
    trimmed = np.array([np.sort(column)[2:5].mean() for column in updates.T])  # 7 rows, 30 %: cut 2 each end
    np.testing.assert_allclose(rb.trimmed_mean(updates, weights), trimmed)
    norms = np.linalg.norm(updates, axis=1)
    clipped = [u * min(1, np.median(norms) / n) for u, n in zip(updates, norms)]
    np.testing.assert_allclose(rb.norm_clipped_mean(updates, weights), np.average(clipped, axis=0, weights=weights))


def test_multi_krum_drops_the_outliers():
    rng = np.random.default_rng(1)
    honest = rng.normal(0, 0.1, size=(7, 20))
    attacked = np.vstack([honest, 50 + rng.normal(size=(3, 20))])
    np.testing.assert_allclose(rb.multi_krum(attacked, np.ones(10), num_byzantine=3), honest.mean(axis=0))


def test_bad_input_gets_clear_errors():
    with pytest.raises(rb.RobustnessInputError, match="unknown aggregator"):
        rb.aggregator("mode")
    with pytest.raises(rb.RobustnessInputError, match=r"\(clients, parameters\)"):
        rb.weighted_mean(np.ones(5), np.ones(5))
    with pytest.raises(rb.RobustnessInputError, match="weights"):
        rb.coordinate_median(np.ones((3, 4)), np.ones(2))
    clients = ex.Clients([np.full((3, 28, 28), 255, np.uint8)], [np.array([1, 2, 3], np.int32)])
    with pytest.raises(rb.RobustnessInputError, match=r"\[0, 0.5\)"):
        rb.run(None, [], clients, rb.weighted_mean, 1, None, attack="boosted", fraction=0.5)
    with pytest.raises(rb.RobustnessInputError, match="unknown attack"):
        rb.run(None, [], clients, rb.weighted_mean, 1, None, attack="ddos", fraction=0.1)
    with pytest.raises(rb.RobustnessInputError, match="unknown poisoning"):
        rb.poisoned(clients, 0, "swap")


def test_poisoning_and_trigger():
    pixels = np.full((4, 28, 28), 255, np.uint8)
    clients = ex.Clients([pixels], [np.array([1, 2, 3, 9], np.int32)])
    assert rb.poisoned(clients, 0, "label flip").labels[0].tolist() == [8, 7, 6, 0]
    backdoored = rb.poisoned(clients, 0, "backdoor", target=0)
    assert backdoored.labels[0].tolist() == [0, 2, 0, 9]
    assert (backdoored.pixels[0][0, 22:26, 22:26] == 0).all() and (backdoored.pixels[0][1] == 255).all()
    assert (rb.add_trigger(pixels)[:, 22:26, 22:26] == 0).all() and (pixels == 255).all()  # a copy


def test_fast_trainer_matches_client_update_on_the_same_batches():
    rng = np.random.default_rng(2)
    clients = ex.Clients([rng.integers(0, 256, size=(45, 28, 28)).astype(np.uint8)], [rng.integers(0, 10, 45).astype(np.int32)])
    trainer = rb.Trainer(create_model, 0.1)
    weights = [w.numpy() for w in create_model().trainable_variables]
    delta, n = trainer.update(weights, clients, 0, seed=[1, 2])
    reference = client_update(create_model(), trainer.batches(clients, 0, [1, 2]), [tf.constant(w) for w in weights],
                              tf.constant(0.1))
    assert n == 45
    np.testing.assert_allclose(delta, rb.flatten([d.numpy() for d in reference.weights_delta]), atol=1e-6)
    assert len(list(trainer.batches(clients, 0, [1, 2]))) == 3  # batches of 20, 20, 5


def test_attacks_replace_the_honest_update():
    honest = np.array([1.0, -2.0, 0.5])
    rng = np.random.default_rng(3)
    assert rb.malicious_update("sign flip", honest, 10, None, None, None, 0, 0, rng)[0].tolist() == [-1.0, 2.0, -0.5]
    boosted, n = rb.malicious_update("boosted", honest, 10, None, None, None, 0, 0, rng)
    np.testing.assert_allclose(boosted, -rb.BOOST * honest)
    assert rb.malicious_update("weight inflation", honest, 10, None, None, None, 0, 0, rng)[1] == rb.INFLATION * 10
    noise = rb.malicious_update("gaussian noise", np.ones(10_000), 10, None, None, None, 0, 0, rng)[0]
    assert abs(np.linalg.norm(noise) / np.linalg.norm(np.ones(10_000)) - rb.BOOST) < 0.5
