"""Plumbing for notebook 08 (security and robustness): attackers that run their own code, robust
aggregators over flattened updates, a backdoor trigger, and a fast round loop for the attack grid.

The grid trains many short runs, so rounds run here in plain TensorFlow: each client's update is the
course's local SGD (notebook 03's `client_update`, on batches drawn in NumPy), the server step is
FedAvg's with rate 1. Notebook 08 checks that one of these aggregators, written as a
`tff.aggregators` factory, gives the same model inside TFF's own runtime.
"""
import collections

import numpy as np
import tensorflow as tf

from helpers import data, experiments as ex

ATTACKS = ("sign flip", "boosted", "gaussian noise", "label flip", "weight inflation", "backdoor")
BACKDOOR_TARGET = 0  # the backdoor makes any image carrying the trigger read as this digit
BOOST = 10.0  # the boosted attacker scales its update by about the number of clients in a round
INFLATION = 100.0  # the inflating attacker claims this many times its real number of examples


class RobustnessInputError(ValueError):
    """Bad input to the robustness helpers: an unknown aggregator or attack, a fraction out of range, a wrong shape."""


def flatten(weights):
    return np.concatenate([np.asarray(w, np.float64).ravel() for w in weights])


def unflatten(vector, like):
    shapes, out, start = [np.shape(w) for w in like], [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(vector[start:start + size].reshape(shape).astype(np.float32))
        start += size
    return out


# --- aggregators: (updates (n, P), weights (n,)) -> aggregate (P,) ----------------------------------

def _check(updates, weights):
    updates, weights = np.asarray(updates, np.float64), np.asarray(weights, np.float64)
    if updates.ndim != 2 or weights.shape != (len(updates),):
        raise RobustnessInputError(f"updates must be (clients, parameters) and weights (clients,); got {updates.shape} "
                                   f"and {weights.shape}")
    return updates, weights


def weighted_mean(updates, weights):
    updates, weights = _check(updates, weights)
    return weights @ updates / weights.sum()


def unweighted_mean(updates, weights):
    updates, _ = _check(updates, weights)
    return updates.mean(axis=0)


def norm_clipped_mean(updates, weights):
    """Weighted mean after the server clips every update to the round's median norm."""
    updates, weights = _check(updates, weights)
    norms = np.linalg.norm(updates, axis=1)
    scale = np.minimum(1.0, np.median(norms) / np.maximum(norms, 1e-12))
    return (weights * scale) @ updates / weights.sum()


def coordinate_median(updates, weights):
    updates, _ = _check(updates, weights)
    return np.median(updates, axis=0)


def trimmed_mean(updates, weights, trim=0.3):
    """Per coordinate, drop the `trim` fraction of largest and of smallest values, average the rest."""
    updates, _ = _check(updates, weights)
    k = int(np.floor(trim * len(updates)))
    ordered = np.sort(updates, axis=0)
    return ordered[k:len(updates) - k].mean(axis=0)


def multi_krum(updates, weights, num_byzantine=3):
    """Multi-Krum (Blanchard et al., 2017): score each update by the summed squared distances to its
    n − f − 2 nearest others; average the n − f best-scored updates."""
    updates, _ = _check(updates, weights)
    n = len(updates)
    squared = np.sum(updates**2, axis=1)
    distances = squared[:, None] + squared[None, :] - 2 * updates @ updates.T
    nearest = max(1, n - num_byzantine - 2)
    scores = np.sort(distances + np.diag(np.full(n, np.inf)), axis=1)[:, :nearest].sum(axis=1)
    chosen = np.argsort(scores)[:max(1, n - num_byzantine)]
    return updates[chosen].mean(axis=0)


def noisy_clipped_mean(noise_multiplier, seed=0):
    """Norm clipping at the round's median norm C, unweighted, plus Gaussian noise of std z·C on the sum
    (DP-FedAvg's mechanism; the clip is chosen from the updates here, so this is not a DP guarantee)."""
    rng = np.random.default_rng(seed)

    def aggregate(updates, weights):
        updates, _ = _check(updates, weights)
        norms = np.linalg.norm(updates, axis=1)
        clip = np.median(norms)
        clipped = updates * np.minimum(1.0, clip / np.maximum(norms, 1e-12))[:, None]
        return (clipped.sum(axis=0) + rng.normal(0, noise_multiplier * clip, updates.shape[1])) / len(updates)
    return aggregate


AGGREGATORS = collections.OrderedDict([
    ("weighted mean", weighted_mean), ("unweighted mean", unweighted_mean), ("norm clipping", norm_clipped_mean),
    ("coordinate median", coordinate_median), ("trimmed mean", trimmed_mean), ("multi-Krum", multi_krum)])


def aggregator(name):
    if name not in AGGREGATORS:
        raise RobustnessInputError(f"unknown aggregator {name!r}: choose one of {list(AGGREGATORS)}")
    return AGGREGATORS[name]


# --- clients ------------------------------------------------------------------------------------------

def add_trigger(pixels):
    """Pixels (uint8, 255 = background) with the backdoor's trigger: a 4×4 ink square near the bottom right."""
    triggered = np.array(pixels, copy=True)
    triggered[..., 22:26, 22:26] = 0
    return triggered


def poisoned(clients, cid, mode, target=0):
    """Client `cid`'s data changed by the attacker: 'label flip' (y -> 9 - y) or 'backdoor' (half the
    images carry the trigger and the label `target`)."""
    pixels, labels = clients.pixels[cid], clients.labels[cid]
    if mode == "label flip":
        return ex.Clients([pixels], [(9 - labels).astype(np.int32)])
    if mode == "backdoor":
        half = np.arange(len(labels)) % 2 == 0
        pixels = np.where(half[:, None, None], add_trigger(pixels), pixels)
        return ex.Clients([pixels], [np.where(half, target, labels).astype(np.int32)])
    raise RobustnessInputError(f"unknown poisoning {mode!r}: 'label flip' or 'backdoor'")


def _as_model_input(pixels):
    """Shipped uint8 pixels (255 = background) -> the model's input as a NumPy array."""
    return data.to_model_input(pixels.astype(np.float32) / 255.0).numpy()


class Trainer:
    """Local training as the course's `client_update` does it (plain SGD on the mean cross-entropy, one
    pass over the client's examples in batches of 20), on batches drawn in NumPy: the same steps without
    a tf.data pipeline per client, about six times faster on two cores. `batches` gives the same batches
    as a dataset, so TFF can be handed exactly what this trainer trains on (notebook 08 compares the two).
    """

    def __init__(self, model_fn, learning_rate=0.1, batch_size=20):
        self.model, self.batch_size, self._inputs = model_fn(), batch_size, {}
        loss_fn, variables = tf.keras.losses.SparseCategoricalCrossentropy(), self.model.trainable_variables

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32), tf.TensorSpec([None], tf.int32)])
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, self.model(x, training=True))
            for variable, gradient in zip(variables, tape.gradient(loss, variables)):
                variable.assign_sub(learning_rate * gradient)
        self._step = step

    def _model_input(self, clients, cid, cache=True):
        pixels = clients.pixels[cid]
        if not cache:  # poisoned copies are made anew every round: caching them would only grow
            return _as_model_input(pixels)
        if id(pixels) not in self._inputs:  # kept with its pixels, so the id is not reused
            self._inputs[id(pixels)] = (pixels, _as_model_input(pixels))
        return self._inputs[id(pixels)][1]

    def _order(self, labels, seed):
        order = np.random.default_rng(seed).permutation(len(labels))
        return [order[start:start + self.batch_size] for start in range(0, len(labels), self.batch_size)]

    def update(self, weights, clients, cid, seed, cache=True):
        """(flattened delta, number of examples) after one local epoch from `weights`."""
        x, y = self._model_input(clients, cid, cache), clients.labels[cid]
        for variable, value in zip(self.model.trainable_variables, weights):
            variable.assign(value)
        for batch in self._order(y, seed):
            self._step(x[batch], y[batch])
        return flatten([v.numpy() - w for v, w in zip(self.model.trainable_variables, weights)]), float(len(y))

    def batches(self, clients, cid, seed):
        """The batches `update` trains on, as a dataset in the course's format (for TFF)."""
        x, y = self._model_input(clients, cid), clients.labels[cid]
        order = np.concatenate(self._order(y, seed))
        return tf.data.Dataset.from_tensor_slices(collections.OrderedDict(x=x[order], y=y[order])).batch(self.batch_size)


def malicious_update(attack, honest_delta, num_examples, trainer, weights, clients, cid, seed, rng):
    """(update, claimed number of examples) an attacker sends instead of its honest update."""
    if attack == "sign flip":
        return -honest_delta, num_examples
    if attack == "boosted":
        return -BOOST * honest_delta, num_examples
    if attack == "gaussian noise":
        return rng.normal(0, BOOST * np.linalg.norm(honest_delta) / np.sqrt(honest_delta.size), honest_delta.size), num_examples
    if attack == "label flip":  # honest code on poisoned data
        return trainer.update(weights, poisoned(clients, cid, "label flip"), 0, seed, cache=False)
    if attack == "weight inflation":  # a sign-flipped update that claims to speak for many examples
        return -honest_delta, INFLATION * num_examples
    if attack == "backdoor":  # model replacement: train on triggered images, then boost (Bagdasaryan et al., 2020)
        delta, n = trainer.update(weights, poisoned(clients, cid, "backdoor", BACKDOOR_TARGET), 0, seed, cache=False)
        return BOOST * delta, n
    raise RobustnessInputError(f"unknown attack {attack!r}: choose one of {list(ATTACKS)}")


def run(trainer, start_weights, clients, aggregate, rounds, evaluator, clients_per_round=10, attack=None,
        fraction=0.0, seed=0, attack_rounds=None, record=None):
    """FedAvg rounds (server rate 1) from `start_weights`; in each of the first `attack_rounds` rounds (default:
    all) the first round(fraction × clients per round) sampled clients are attackers. Returns
    experiments.History (accuracy before and after each round); `record(weights)` is also called after each round."""
    if not 0 <= fraction < 0.5:
        raise RobustnessInputError(f"the fraction of malicious clients must be in [0, 0.5), got {fraction}")
    if attack is not None and attack not in ATTACKS:
        raise RobustnessInputError(f"unknown attack {attack!r}: choose one of {list(ATTACKS)}")
    attackers = int(round(fraction * clients_per_round)) if attack else 0
    rng = np.random.default_rng([seed, 8])
    weights = [np.asarray(w) for w in start_weights]
    accuracy = [evaluator.accuracy(weights)]
    for round_num in range(rounds):
        sampled = ex.sample(len(clients.labels), clients_per_round, round_num, seed)
        updates, counts = [], []
        attacking = attackers if attack_rounds is None or round_num < attack_rounds else 0
        for i, cid in enumerate(sampled):
            delta, n = trainer.update(weights, clients, cid, seed=[seed, round_num, cid])
            if i < attacking:
                delta, n = malicious_update(attack, delta, n, trainer, weights, clients, cid, [seed, round_num, cid], rng)
            updates.append(delta)
            counts.append(n)
        weights = unflatten(flatten(weights) + aggregate(np.array(updates), np.array(counts)), weights)
        accuracy.append(evaluator.accuracy(weights))
        if record is not None:
            record(weights)
    return ex.History(np.array(accuracy), weights)
