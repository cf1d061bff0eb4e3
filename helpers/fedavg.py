"""Federated averaging, piece by piece, saved here from the notebooks that teach each piece:
`client_update` (notebook 03). tests/test_notebooks.py keeps both copies identical.
"""
import collections

import tensorflow as tf

ClientOutput = collections.namedtuple("ClientOutput", ["weights_delta", "num_examples", "loss"])


@tf.function
def client_update(model, dataset, server_weights, client_learning_rate):
    """Train `model` on one client's `dataset`, starting from `server_weights` (list of tensors).

    Local optimizer: plain SGD (what `tff.learning.optimizers.build_sgdm(lr)` does), written out.
    Returns ClientOutput(weights_delta = trained - received, num_examples, mean loss).
    """
    client_weights = model.trainable_variables
    for variable, received in zip(client_weights, server_weights):
        variable.assign(received)  # every round starts from the server's model

    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()
    num_examples = tf.constant(0, tf.int32)
    loss_sum = tf.constant(0.0)
    for batch in dataset:
        with tf.GradientTape() as tape:
            loss = loss_fn(batch["y"], model(batch["x"], training=True))
        gradients = tape.gradient(loss, client_weights)
        for variable, gradient in zip(client_weights, gradients):
            variable.assign_sub(client_learning_rate * gradient)
        batch_size = tf.shape(batch["y"])[0]
        num_examples += batch_size
        loss_sum += loss * tf.cast(batch_size, tf.float32)

    weights_delta = [variable - received for variable, received in zip(client_weights, server_weights)]
    mean_loss = loss_sum / tf.maximum(tf.cast(num_examples, tf.float32), 1.0)
    return ClientOutput(weights_delta, num_examples, mean_loss)
