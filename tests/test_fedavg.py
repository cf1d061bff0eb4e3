"""The hand-built FedAvg of notebooks 03-05 against TFF's built-in, and the client update's contract."""
import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from helpers import data, runtime
from helpers.fedavg import build_fedavg_process, client_update
from helpers.model import create_model

CLIENT_LR, SERVER_LR, SERVER_MOMENTUM = 0.1, 1.0, 0.9


def test_hand_built_fedavg_matches_tff_build_weighted_fed_avg(round_datasets):
    # Seeded, as notebook 05: the initial model is the course's. From most initial models the two
    # stay within ~5e-8 after 3 rounds, but not all: over 16 seeds, one (tf seed 8) amplified the
    # rounding difference to 1e-3, and the unseeded test failed once in CI at 2.9e-5.
    runtime.set_seed()
    element_spec = round_datasets(0)[0].element_spec
    server_optimizer = tff.learning.optimizers.build_sgdm(learning_rate=SERVER_LR, momentum=SERVER_MOMENTUM)
    ours = build_fedavg_process(create_model, element_spec, server_optimizer)
    theirs = tff.learning.algorithms.build_weighted_fed_avg(
        model_fn=lambda: tff.learning.models.from_keras_model(
            create_model(), input_spec=element_spec, loss=tf.keras.losses.SparseCategoricalCrossentropy()),
        client_optimizer_fn=tff.learning.optimizers.build_sgdm(learning_rate=CLIENT_LR),
        server_optimizer_fn=tff.learning.optimizers.build_sgdm(learning_rate=SERVER_LR, momentum=SERVER_MOMENTUM),
        loop_implementation=tff.learning.LoopImplementation.DATASET_ITERATOR)

    our_state = ours.initialize()
    their_state = theirs.set_model_weights(
        theirs.initialize(), tff.learning.models.ModelWeights(trainable=list(our_state["weights"]), non_trainable=[]))
    initial = [np.array(w) for w in our_state["weights"]]
    for round_num in range(3):
        datasets = round_datasets(round_num)
        our_state, metrics = ours.next(our_state, datasets, CLIENT_LR)
        their_state = theirs.next(their_state, datasets).state

    their_weights = theirs.get_model_weights(their_state).trainable
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(our_state["weights"], their_weights))
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(our_state["weights"], initial))
    assert moved > 1e-2, "training must actually move the weights for the comparison to mean anything"
    assert gap < 1e-5, gap
    assert 0.0 < metrics["loss"] < 3.0 and 0.0 <= metrics["accuracy"] <= 1.0


def test_client_update_contract(train_data):
    writer = train_data.client_ids[0]
    dataset = data.preprocess(train_data.create_tf_dataset_for_client(writer), epochs=2, seed=0)
    server_weights = [tf.identity(v) for v in create_model().trainable_variables]
    model = create_model()
    out = client_update(model, dataset, server_weights, 0.1)
    n = sum(1 for _ in train_data.create_tf_dataset_for_client(writer))
    assert int(out.num_examples) == 2 * n
    assert [d.shape for d in out.weights_delta] == [w.shape for w in server_weights]
    # the delta is trained - received: received + delta reproduces the client's trained weights
    for variable, received, delta in zip(model.trainable_variables, server_weights, out.weights_delta):
        np.testing.assert_allclose(variable.numpy(), (received + delta).numpy(), atol=1e-6)
    empty = client_update(model, dataset.take(0), server_weights, 0.1)
    assert int(empty.num_examples) == 0 and all(float(tf.reduce_max(tf.abs(d))) == 0.0 for d in empty.weights_delta)


def test_round_metrics_equal_the_eager_client_update(round_datasets):
    # Under TFF the client update is traced as a graph; its metrics must be the ones it computes
    # eagerly (once `==` there compared tensor objects and the accuracy was always 0). Seeded, so
    # that no prediction sits on a rounding tie between the two.
    runtime.set_seed()
    dataset = round_datasets(0, clients=1)
    process = build_fedavg_process(create_model, dataset[0].element_spec, tff.learning.optimizers.build_sgdm(1.0))
    state = process.initialize()
    _, metrics = process.next(state, dataset, CLIENT_LR)
    eager = client_update(create_model(), dataset[0], [tf.constant(w) for w in state["weights"]], CLIENT_LR)
    assert eager.accuracy > 0.0
    np.testing.assert_allclose(metrics["accuracy"], eager.accuracy.numpy(), atol=1e-6)
    np.testing.assert_allclose(metrics["loss"], eager.loss.numpy(), rtol=1e-5)
