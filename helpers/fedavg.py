"""Federated averaging, saved here from the notebooks that teach each piece:
`client_update` (notebook 03), `server_optimizer_update` (notebook 04) and
`build_fedavg_process` (notebook 05). tests/test_notebooks.py keeps both copies identical.
"""
import collections

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

ClientOutput = collections.namedtuple("ClientOutput", ["weights_delta", "num_examples", "loss", "accuracy"])


@tf.function
def client_update(model, dataset, server_weights, client_learning_rate):
    """Train `model` on one client's `dataset`, starting from `server_weights` (list of tensors).

    Local optimizer: plain SGD (what `tff.learning.optimizers.build_sgdm(lr)` does), written out.
    Returns ClientOutput(weights_delta = trained - received, num_examples, and the mean training
    loss and accuracy over the local steps, as metrics).
    """
    client_weights = model.trainable_variables
    for variable, received in zip(client_weights, server_weights):
        variable.assign(received)  # every round starts from the server's model

    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()
    num_examples = tf.constant(0, tf.int32)
    loss_sum = tf.constant(0.0)
    num_correct = tf.constant(0, tf.int32)
    for batch in dataset:
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
        # tf.equal, not ==: where TFF traces this as a graph, == compares the tensor objects
        num_correct += tf.reduce_sum(tf.cast(tf.equal(predicted, batch["y"]), tf.int32))

    weights_delta = [variable - received for variable, received in zip(client_weights, server_weights)]
    seen = tf.maximum(tf.cast(num_examples, tf.float32), 1.0)
    return ClientOutput(weights_delta, num_examples, loss_sum / seen, tf.cast(num_correct, tf.float32) / seen)


def server_optimizer_update(server_optimizer, optimizer_state, server_weights, mean_delta):
    """One server step with a TFF optimizer; the pseudo-gradient is the negated mean delta.

    Returns (new optimizer state, new server weights). SGD with rate 1.0 is plain FedAvg.
    """
    pseudo_gradient = [-delta for delta in mean_delta]
    return server_optimizer.next(optimizer_state, server_weights, pseudo_gradient)


def build_fedavg_process(model_fn, element_spec, server_optimizer, local_update=client_update):
    """FedAvg as a `tff.templates.IterativeProcess`, from the pieces of notebooks 03 and 04.

    local_update: the client's work, `client_update` unless a variant replaces it (notebook 06: FedProx).
    initialize() -> server state OrderedDict(weights, optimizer_state), placed at SERVER.
    next(state, client_datasets, client_learning_rate) -> (new state, OrderedDict(loss, accuracy)):
    the example-weighted mean training loss and accuracy of the round's clients.
    """
    @tff.tensorflow.computation
    def server_init():
        weights = model_fn().trainable_variables
        specs = [tf.TensorSpec(w.shape, w.dtype) for w in weights]
        return collections.OrderedDict(weights=weights, optimizer_state=server_optimizer.initialize(specs))

    state_type = server_init.type_signature.result
    weights_type = state_type.weights
    # tensorflow_to_type turns a tf.data element spec into TFF's type of one batch; a client's data
    # is a *sequence* of such batches, which TFF's type signatures write as <x=...,y=...>*.
    dataset_type = tff.SequenceType(tff.types.tensorflow_to_type(element_spec))

    @tff.tensorflow.computation(dataset_type, weights_type, np.float32)
    def client_work(dataset, server_weights, client_learning_rate):
        return local_update(model_fn(), dataset, server_weights, client_learning_rate)

    @tff.tensorflow.computation(np.int32)
    def as_weight(num_examples):  # federated_mean takes a float weight; the count is an int32
        return tf.cast(num_examples, tf.float32)

    @tff.tensorflow.computation(state_type, weights_type)
    def server_work(state, mean_delta):
        optimizer_state, weights = server_optimizer_update(
            server_optimizer, state["optimizer_state"], state["weights"], mean_delta)
        return collections.OrderedDict(weights=weights, optimizer_state=optimizer_state)

    @tff.federated_computation
    def initialize_fn():
        # federated_value places a value computed once (here the fresh state) at the server.
        return tff.federated_value(server_init(), tff.SERVER)

    @tff.federated_computation(tff.FederatedType(state_type, tff.SERVER),
                               tff.FederatedType(dataset_type, tff.CLIENTS),
                               tff.FederatedType(np.float32, tff.SERVER))
    def next_fn(server_state, client_datasets, client_learning_rate):
        # 1. broadcast: the global weights and this round's learning rate go to every client.
        #    server_state.weights: a field of a value placed at the server is itself placed there.
        weights_at_clients = tff.federated_broadcast(server_state.weights)
        learning_rate_at_clients = tff.federated_broadcast(client_learning_rate)
        # 2. local work on each client (notebook 03)
        client_outputs = tff.federated_map(client_work, (client_datasets, weights_at_clients, learning_rate_at_clients))
        # 3. aggregate: means weighted by each client's number of examples (notebook 04).
        #    client_outputs.num_examples: the same field access, on values placed at the clients.
        weight = tff.federated_map(as_weight, client_outputs.num_examples)
        mean_delta = tff.federated_mean(client_outputs.weights_delta, weight=weight)
        metrics = collections.OrderedDict(loss=tff.federated_mean(client_outputs.loss, weight=weight),
                                          accuracy=tff.federated_mean(client_outputs.accuracy, weight=weight))
        # 4. server update (notebook 04)
        new_state = tff.federated_map(server_work, (server_state, mean_delta))
        # metrics is a Python dict of two values at the server; federated_zip makes it one value
        # at the server, of dict type, which is what a computation's result type can be.
        return new_state, tff.federated_zip(metrics)

    return tff.templates.IterativeProcess(initialize_fn, next_fn)
