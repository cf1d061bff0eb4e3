"""Federated averaging as notebooks 03-05 teach it: the client update, the server update, the
process, and how each round samples its clients and builds their data.

Every function here is saved from the notebook that teaches it: its teaching cell carries the line
`# saved in helpers/fedavg.py`, and tests/test_notebooks.py keeps the two copies identical. To
change one, change the notebook's cell and copy it here.
"""
import collections
import types

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from helpers import data

ClientOutput = collections.namedtuple("ClientOutput", ["weights_delta", "num_examples", "loss", "accuracy"])


@tf.function
def client_update(model, dataset, server_weights, client_learning_rate):
    """Plain SGD on one client's `dataset` from `server_weights` (`build_sgdm(lr)`
    written out). Returns ClientOutput(weights_delta = trained - received,
    num_examples, mean training loss and accuracy)."""
    client_weights = model.trainable_variables
    for variable, received in zip(client_weights, server_weights):
        variable.assign(received)  # every round starts from the server's model

    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()
    num_examples = tf.constant(0, tf.int32)
    loss_sum = tf.constant(0.0)
    num_correct = tf.constant(0, tf.int32)
    for batch in iter(dataset):  # iter(): the loop runs inside the graph
        with tf.GradientTape() as tape:
            predictions = model(batch["x"], training=True)
            loss = loss_fn(batch["y"], predictions)
        gradients = tape.gradient(loss, client_weights)
        for variable, gradient in zip(client_weights, gradients):
            variable.assign_sub(client_learning_rate * gradient)
        batch_size = tf.shape(batch["y"])[0]
        num_examples += batch_size
        loss_sum += loss * tf.cast(batch_size, tf.float32)
        predicted = tf.argmax(predictions, axis=-1, output_type=tf.int32)
        # tf.equal, not ==: in a graph that TFF traces, == compares the tensor objects
        num_correct += tf.reduce_sum(tf.cast(tf.equal(predicted, batch["y"]), tf.int32))

    pairs = zip(client_weights, server_weights)
    weights_delta = [trained - received for trained, received in pairs]
    seen = tf.maximum(tf.cast(num_examples, tf.float32), 1.0)
    accuracy = tf.cast(num_correct, tf.float32) / seen
    return ClientOutput(weights_delta, num_examples, loss_sum / seen, accuracy)


def server_optimizer_update(
    server_optimizer, optimizer_state, server_weights, mean_delta
):
    """One server step with a TFF optimizer; the pseudo-gradient is the negated mean
    delta.

    Returns (new optimizer state, new server weights). SGD with rate 1.0 is plain
    FedAvg.
    """
    pseudo_gradient = [-delta for delta in mean_delta]
    return server_optimizer.next(optimizer_state, server_weights, pseudo_gradient)


def fedavg_computations(model_fn, element_spec, server_optimizer,
                        local_update=client_update):
    """The TensorFlow computations a FedAvg round is made of, each typed by what it
    receives. local_update: the client's work (client_update or a variant)."""
    @tff.tensorflow.computation
    def server_init():
        weights = model_fn().trainable_variables
        specs = [tf.TensorSpec(w.shape, w.dtype) for w in weights]
        return collections.OrderedDict(
            weights=weights, optimizer_state=server_optimizer.initialize(specs))

    state_type = server_init.type_signature.result
    # TFF's type of one batch; a client's data is a *sequence* of them, <x=...,y=...>*
    dataset_type = tff.SequenceType(tff.types.tensorflow_to_type(element_spec))

    @tff.tensorflow.computation(dataset_type, state_type.weights, np.float32)
    def client_work(dataset, server_weights, client_learning_rate):
        return local_update(model_fn(), dataset, server_weights, client_learning_rate)

    @tff.tensorflow.computation(np.int32)
    def as_weight(num_examples):  # federated_mean takes a float weight, not an int32
        return tf.cast(num_examples, tf.float32)

    @tff.tensorflow.computation(state_type, state_type.weights)
    def server_work(state, mean_delta):
        optimizer_state, weights = server_optimizer_update(
            server_optimizer, state["optimizer_state"], state["weights"], mean_delta)
        return collections.OrderedDict(weights=weights, optimizer_state=optimizer_state)

    return types.SimpleNamespace(
        server_init=server_init, client_work=client_work, as_weight=as_weight,
        server_work=server_work, state_type=state_type, dataset_type=dataset_type)


def build_fedavg_process(model_fn, element_spec, server_optimizer,
                         local_update=client_update):
    """FedAvg as an IterativeProcess. initialize() -> state (weights, optimizer_state);
    next(state, client_datasets, client_learning_rate) -> (new state, metrics)."""
    tf_work = fedavg_computations(model_fn, element_spec, server_optimizer,
                                  local_update)
    @tff.federated_computation
    def initialize_fn():  # federated_value places a value computed once at the server
        return tff.federated_value(tf_work.server_init(), tff.SERVER)

    @tff.federated_computation(tff.FederatedType(tf_work.state_type, tff.SERVER),
                               tff.FederatedType(tf_work.dataset_type, tff.CLIENTS),
                               tff.FederatedType(np.float32, tff.SERVER))
    def next_fn(server_state, client_datasets, client_learning_rate):
        # 1. broadcast the global weights and this round's learning rate (a field of a
        #    value placed at the server, like server_state.weights, is placed there too)
        weights_at_clients = tff.federated_broadcast(server_state.weights)
        learning_rate_at_clients = tff.federated_broadcast(client_learning_rate)
        # 2. local work on each client (notebook 03)
        client_outputs = tff.federated_map(tf_work.client_work, (
            client_datasets, weights_at_clients, learning_rate_at_clients))
        # 3. aggregate: means weighted by each client's number of examples (notebook 04)
        weight = tff.federated_map(tf_work.as_weight, client_outputs.num_examples)
        mean_delta = tff.federated_mean(client_outputs.weights_delta, weight=weight)
        metrics = collections.OrderedDict(
            loss=tff.federated_mean(client_outputs.loss, weight=weight),
            accuracy=tff.federated_mean(client_outputs.accuracy, weight=weight))
        # 4. server update (notebook 04)
        new_state = tff.federated_map(tf_work.server_work, (server_state, mean_delta))
        return new_state, tff.federated_zip(metrics)  # one dict-typed value at SERVER

    return tff.templates.IterativeProcess(initialize_fn, next_fn)


def sample_clients(client_ids, clients_per_round, round_num, seed):
    """`clients_per_round` distinct ids, drawn afresh (and repeatably) each round."""
    rng = np.random.default_rng([seed, round_num])
    return list(rng.choice(client_ids, size=clients_per_round, replace=False))


base_datasets = {}  # each writer's unprocessed dataset, built once
# traced once per number of epochs; the seed goes in as a tensor (notebook 05's appendix)
compiled_preprocess = tf.function(data.preprocess)


def client_datasets(client_data, client_ids, round_num, local_epochs, batch_size):
    """The round's input to `process.next`: a preprocessed dataset per client."""
    data.check_client_ids(client_data, client_ids)
    seed = tf.constant(round_num, tf.int64)  # a tensor: a new round is not a new trace
    for cid in client_ids:
        key = (client_data, cid)
        if key not in base_datasets:
            base_datasets[key] = client_data.create_tf_dataset_for_client(cid)
    return [compiled_preprocess(base_datasets[client_data, cid], batch_size,
                                local_epochs, seed=seed) for cid in client_ids]


def client_learning_rate(round_num, total_rounds, start, end):
    """Cosine decay from `start` at round 0 to `end` at round `total_rounds - 1`."""
    progress_fraction = round_num / max(total_rounds - 1, 1)
    return float(end + 0.5 * (start - end) * (1 + np.cos(np.pi * progress_fraction)))
