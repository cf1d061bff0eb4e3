"""helpers.simulation and helpers.training: the fast FedAvg step is the course's FedAvg arithmetic,
its hooks change one thing each, and the one round loop runs TFF processes and the fast step alike."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from helpers import data, populations, simulation, training
from helpers.fedavg import build_fedavg_process, client_update, sample_clients
from helpers.model import create_model


@pytest.fixture(scope="module")
def clients():
    rng = np.random.default_rng(5)
    sizes = (45, 23, 31)
    return populations.Clients([rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8) for n in sizes],
                      [rng.integers(0, 10, n).astype(np.int32) for n in sizes])


@pytest.fixture(scope="module")
def trainer():
    return simulation.Trainer(create_model, 0.1)


def test_several_epochs_and_a_deadline_match_client_update(clients, trainer):
    weights = [w.numpy() for w in create_model().trainable_variables]
    for epochs, max_batches in ((2, None), (3, 4)):
        delta, n = trainer.update(weights, clients, 0, seed=[1, 2], epochs=epochs, max_batches=max_batches)
        dataset = trainer.batches(clients, 0, [1, 2], epochs, max_batches)
        sizes = [len(batch["y"]) for batch in dataset]
        assert sizes == ([20, 20, 5] * epochs)[:max_batches or None] and n == sum(sizes)
        reference = client_update(create_model(), dataset, [tf.constant(w) for w in weights], tf.constant(0.1))
        np.testing.assert_allclose(delta, simulation.flatten([d.numpy() for d in reference.weights_delta]), atol=2e-6)


def test_the_proximal_term_pulls_towards_the_received_model(clients, trainer):
    weights = [w.numpy() for w in create_model().trainable_variables]
    lengths = [np.linalg.norm(trainer.update(weights, clients, 0, seed=3, epochs=3, mu=mu)[0])
               for mu in (0.0, 1.0, 5.0)]
    assert lengths[0] > lengths[1] > lengths[2] > 0


def test_run_agrees_with_the_course_tff_process(clients, trainer):
    """Three rounds of the fast loop == three rounds of helpers.fedavg's TFF process on the same batches,
    with a server optimizer that has state (momentum)."""
    evaluator = training.Evaluator(create_model, np.ones((5, 28, 28), np.float32), np.zeros(5))
    start = training.seeded_weights(create_model, 7)
    momentum = tff.learning.optimizers.build_sgdm(learning_rate=0.5, momentum=0.9)
    step = simulation.FedAvgStep(trainer, clients, seed=7, clients_per_round=2, local_epochs=2,
                                 server_optimizer=momentum)
    fast = training.run(step, 3, evaluator, start)
    spec = trainer.batches(clients, 0, 0).element_spec
    process = build_fedavg_process(create_model, spec, momentum)

    def batches(round_num):
        sampled = sample_clients(range(3), 2, round_num, 7)
        return [trainer.batches(clients, cid, [7, round_num, cid], 2) for cid in sampled]
    in_tff = training.run(training.ProcessStep(process, batches, client_learning_rate=0.1), 3, evaluator, start)
    np.testing.assert_allclose(simulation.flatten(fast.weights), simulation.flatten(in_tff.weights), atol=1e-5)


def test_hooks_drop_delay_and_cut(clients, trainer):
    """Drop-outs, a one-batch deadline and late arrivals: a late update is the one its client trained,
    when sampled, on the model it received then, and it arrives in addition to the fresh ones."""
    evaluator = training.Evaluator(create_model, np.ones((5, 28, 28), np.float32), np.zeros(5))
    start = training.seeded_weights(create_model, 1)
    aggregated, recorded = {}, []

    def seen(updates, global_weights, round_num):  # a tamper hook that only looks
        aggregated[round_num] = list(updates)
        return updates
    reports = lambda sampled, r, seed: sampled[:2] if r else []  # noqa: E731  (nobody in round 0)
    step = simulation.FedAvgStep(trainer, clients, seed=1, clients_per_round=3, tamper=seen, reports=reports,
                                 delay=lambda cid, r, seed: 2 if cid == 0 else 0, deadline=lambda cid, r, seed: 1)
    history = training.run(step, 6, evaluator, start, evaluate_every=2, record=recorded.append)
    assert len(history.accuracy) == 4 and len(recorded) == 6  # before training, after rounds 2, 4, 6
    assert all(np.array_equal(a, b) for a, b in zip(recorded[0], start)), \
        "a round where nobody reports leaves the model as it was"
    received = [start] + recorded  # the global model each round's clients receive
    late_seen = 0
    for round_num, updates in aggregated.items():
        assert all(u.num_examples <= 20 for u in updates), "one batch of at most 20 by the deadline"
        fresh = [u.cid for u in updates if u.staleness == 0]
        expected_fresh = [c for c in reports(sample_clients(range(3), 3, round_num, 1), round_num, 1) if c != 0]
        assert sorted(fresh) == sorted(expected_fresh)
        for update in (u for u in updates if u.staleness):
            sent = round_num - 2
            assert update.cid == 0 and update.staleness == 2
            assert 0 in reports(sample_clients(range(3), 3, sent, 1), sent, 1), "sampled two rounds before"
            then, _ = trainer.update(received[sent], clients, 0, seed=[1, sent, 0], max_batches=1)
            now, _ = trainer.update(received[round_num], clients, 0, seed=[1, sent, 0], max_batches=1)
            np.testing.assert_allclose(update.delta, then, atol=1e-6)
            assert not np.allclose(update.delta, now, atol=1e-6), "trained on the old model, not today's"
            late_seen += 1
    assert late_seen >= 1, "the seed was chosen so that client 0's late updates arrive"
    sampled_late = [r for r in range(1, 6) if 0 in reports(sample_clients(range(3), 3, r, 1), r, 1)]
    assert late_seen == len([r for r in sampled_late if r + 2 < 6]), "an update due after the last round never arrives"
    with pytest.raises(ValueError, match="delay must be 0 or more"):
        training.run(simulation.FedAvgStep(trainer, clients, seed=1, clients_per_round=2,
                                           delay=lambda cid, r, seed: -1), 1, evaluator, start)


def test_an_unknown_client_is_named(clients, trainer):
    with pytest.raises(data.UnknownClientError, match="clients 0..2"):
        trainer.update([w.numpy() for w in create_model().trainable_variables], clients, 3, seed=0)


def test_runs_side_by_side_give_what_runs_alone_give(clients, trainer):
    evaluator = training.Evaluator(create_model, np.ones((5, 28, 28), np.float32), np.zeros(5))
    runner = simulation.Runner(create_model, 0.1, threads=2)
    made = []  # a population may be made when its run starts

    def make():
        made.append(1)
        return clients
    jobs = [dict(clients=clients if seed == 3 else make, rounds=2, evaluator=evaluator, clients_per_round=2,
                 seed=seed, local_epochs=epochs) for epochs in (1, 2) for seed in (3, 4)]
    together = runner.run_all(jobs)
    step = simulation.FedAvgStep(trainer, clients, seed=4, clients_per_round=2, local_epochs=2)
    alone = training.run(step, 2, evaluator, training.seeded_weights(create_model, 4))
    np.testing.assert_allclose(simulation.flatten(together[3].weights), simulation.flatten(alone.weights), atol=1e-6)
    assert not np.allclose(simulation.flatten(together[2].weights), simulation.flatten(alone.weights))
    assert len(made) == 2


def test_a_tff_learning_process_skips_empty_rounds_and_the_course_process_needs_a_rate(clients, trainer):
    evaluator = training.Evaluator(create_model, np.ones((5, 28, 28), np.float32), np.zeros(5))
    spec = trainer.batches(clients, 0, 0).element_spec
    process = training.builtin_fedavg(create_model, spec, 0.1)
    start = training.seeded_weights(create_model, 2)
    datasets = lambda r: [trainer.batches(clients, 0, r)] if r % 2 else []  # noqa: E731
    history = training.run(training.ProcessStep(process, datasets), 2, evaluator, start)
    moved = simulation.flatten(history.weights) - simulation.flatten(start)
    assert np.abs(moved).max() > 0, "round 1 trained"
    once = training.run(training.ProcessStep(process, lambda r: [trainer.batches(clients, 0, 1)]), 1, evaluator, start)
    np.testing.assert_allclose(simulation.flatten(history.weights), simulation.flatten(once.weights), atol=1e-6)
    course = build_fedavg_process(create_model, spec, tff.learning.optimizers.build_sgdm(learning_rate=1.0))
    with pytest.raises(ValueError, match="client_learning_rate"):
        training.ProcessStep(course, datasets)
    with pytest.raises(ValueError, match="drop client_learning_rate"):
        training.ProcessStep(process, datasets, client_learning_rate=0.1)
    for per_round in (0, 4):
        with pytest.raises(ValueError, match="between 1 and the 3 clients"):
            simulation.FedAvgStep(trainer, clients, clients_per_round=per_round)
    with pytest.raises(ValueError, match="evaluate_every"):
        training.run(training.ProcessStep(process, datasets), 2, evaluator, start, evaluate_every=0)


def test_a_tamper_hook_sees_the_round_and_what_it_returns_is_aggregated(clients, trainer):
    evaluator = training.Evaluator(create_model, np.ones((5, 28, 28), np.float32), np.zeros(5))
    start = training.seeded_weights(create_model, 3)
    seen = []

    def silence_all(updates, global_weights, round_num):
        seen.append((round_num, sorted(u.cid for u in updates), global_weights is not None))
        return []
    history = training.run(simulation.FedAvgStep(trainer, clients, seed=3, clients_per_round=2, tamper=silence_all),
                           2, evaluator, start)
    assert [r for r, _, _ in seen] == [0, 1] and all(len(cids) == 2 and known for _, cids, known in seen)
    np.testing.assert_array_equal(simulation.flatten(history.weights), simulation.flatten(start))
    double = lambda updates, global_weights, round_num: updates + updates  # noqa: E731
    twice = training.run(simulation.FedAvgStep(trainer, clients, seed=3, clients_per_round=2, tamper=double),
                         1, evaluator, start)
    once = training.run(simulation.FedAvgStep(trainer, clients, seed=3, clients_per_round=2), 1, evaluator, start)
    np.testing.assert_allclose(simulation.flatten(twice.weights), simulation.flatten(once.weights), atol=1e-6)


def test_the_weighted_mean_refuses_weights_it_cannot_average():
    deltas = np.ones((3, 4))
    assert simulation.weighted_mean(deltas * [[1], [2], [3]], [1, 1, 2]).tolist() == [2.25] * 4
    for bad in ([0, 0, 0], [1, -2, 0.5]):
        with pytest.raises(ValueError, match="non-negative with a positive sum"):
            simulation.weighted_mean(deltas, bad)
