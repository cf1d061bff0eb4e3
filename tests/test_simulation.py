"""helpers.simulation: the fast round loop of notebooks 06 and 08 is the course's FedAvg arithmetic."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from helpers import data, experiments as ex, simulation as sim
from helpers.fedavg import build_fedavg_process, client_update
from helpers.model import create_model


@pytest.fixture(scope="module")
def clients():
    rng = np.random.default_rng(5)
    sizes = (45, 23, 31)
    return ex.Clients([rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8) for n in sizes],
                      [rng.integers(0, 10, n).astype(np.int32) for n in sizes])


@pytest.fixture(scope="module")
def trainer():
    return sim.Trainer(create_model, 0.1)


def test_several_epochs_and_a_deadline_match_client_update(clients, trainer):
    weights = [w.numpy() for w in create_model().trainable_variables]
    for epochs, max_batches in ((2, None), (3, 4)):
        delta, n = trainer.update(weights, clients, 0, seed=[1, 2], epochs=epochs, max_batches=max_batches)
        dataset = trainer.batches(clients, 0, [1, 2], epochs, max_batches)
        sizes = [len(batch["y"]) for batch in dataset]
        assert sizes == ([20, 20, 5] * epochs)[:max_batches or None] and n == sum(sizes)
        reference = client_update(create_model(), dataset, [tf.constant(w) for w in weights], tf.constant(0.1))
        np.testing.assert_allclose(delta, sim.flatten([d.numpy() for d in reference.weights_delta]), atol=2e-6)


def test_the_proximal_term_pulls_towards_the_received_model(clients, trainer):
    weights = [w.numpy() for w in create_model().trainable_variables]
    lengths = [np.linalg.norm(trainer.update(weights, clients, 0, seed=3, epochs=3, mu=mu)[0]) for mu in (0.0, 1.0, 5.0)]
    assert lengths[0] > lengths[1] > lengths[2] > 0


def test_run_agrees_with_the_course_tff_process(clients, trainer):
    """Three rounds of the fast loop == three rounds of helpers.fedavg's TFF process on the same batches,
    with a server optimizer that has state (momentum)."""
    evaluator = ex.Evaluator(create_model, np.ones((5, 28, 28), np.float32), np.zeros(5))
    start = sim.initial_weights(create_model, 7)
    fast = sim.run(trainer, clients, 3, evaluator, seed=7, start_weights=start, clients_per_round=2, local_epochs=2,
                   server_optimizer=tff.learning.optimizers.build_sgdm(learning_rate=0.5, momentum=0.9))
    spec = trainer.batches(clients, 0, 0).element_spec
    process = build_fedavg_process(create_model, spec, tff.learning.optimizers.build_sgdm(learning_rate=0.5, momentum=0.9))
    state = process.initialize()
    state["weights"] = start
    for round_num in range(3):
        sampled = ex.sample(3, 2, round_num, 7)
        state, _ = process.next(state, [trainer.batches(clients, cid, [7, round_num, cid], 2) for cid in sampled], 0.1)
    np.testing.assert_allclose(sim.flatten(fast.weights), sim.flatten(state["weights"]), atol=1e-5)


def test_hooks_drop_delay_and_cut(clients, trainer):
    evaluator = ex.Evaluator(create_model, np.ones((5, 28, 28), np.float32), np.zeros(5))
    seen = []

    def aggregate(updates):
        seen.append([(u.cid, u.num_examples, u.staleness) for u in updates])
        return sim.weighted_mean(updates)
    history = sim.run(trainer, clients, 4, evaluator, seed=1, model_fn=create_model, clients_per_round=3,
                      reports=lambda sampled, r, seed: sampled[:2] if r else [], delay=lambda cid, r, seed: 1,
                      max_batches=lambda cid, r, seed: 1, aggregate=aggregate, evaluate_every=2)
    assert len(history.accuracy) == 3  # before training, after rounds 2 and 4
    assert len(seen) == 3  # round 0: nobody reported, the model stays
    assert all(len(r) == 2 and all(n <= 20 and late == 1 for _, n, late in r) for r in seen)


def test_an_unknown_client_is_named(clients, trainer):
    with pytest.raises(data.UnknownClientError, match="clients 0..2"):
        trainer.update([w.numpy() for w in create_model().trainable_variables], clients, 3, seed=0)


def test_partitions_separate_quantity_from_label_skew():
    labels = np.repeat(np.arange(10), 60)
    equal = ex.label_skew_parts(labels, 12, 0.1, seed=0)
    assert sorted(np.concatenate(equal).tolist()) == list(range(600)), "every image dealt exactly once"
    assert {len(p) for p in equal} == {50}
    skewed = ex.label_share(ex.Clients([None] * 12, [labels[p] for p in equal]))
    balanced = ex.label_share(ex.Clients([None] * 12, [labels[p] for p in ex.label_skew_parts(labels, 12, 100, seed=0)]))
    assert skewed > 0.5 > 0.25 > balanced
    sized = ex.sized_iid_parts([5, 100, 495], seed=0)
    assert [len(p) for p in sized] == [5, 100, 495] and len(set(np.concatenate(sized))) == 600
    with pytest.raises(ValueError, match="alpha must be positive"):
        ex.label_skew_parts(labels, 12, 0.0)


def test_runs_side_by_side_give_what_runs_alone_give(clients, trainer):
    evaluator = ex.Evaluator(create_model, np.ones((5, 28, 28), np.float32), np.zeros(5))
    runner = sim.Runner(create_model, 0.1, threads=2)
    jobs = [dict(clients=clients, rounds=2, evaluator=evaluator, clients_per_round=2, seed=seed, local_epochs=epochs)
            for epochs in (1, 2) for seed in (3, 4)]
    together = runner.run_all(jobs)
    alone = sim.run(trainer, clients, 2, evaluator, seed=4, model_fn=create_model, clients_per_round=2, local_epochs=2)
    np.testing.assert_allclose(sim.flatten(together[3].weights), sim.flatten(alone.weights), atol=1e-6)
    assert not np.allclose(sim.flatten(together[2].weights), sim.flatten(alone.weights))
