"""The course's one round loop, and the evaluation it records.

`run(step, rounds, evaluator, start_weights)` trains for `rounds` rounds and records the global
model's accuracy; what happens in a round is the step's business. A step is any object with

    initialize(start_weights) -> state
    next(state, round_num) -> state
    weights(state) -> the global model's weights (a list of arrays)

Two kinds plug in: `ProcessStep`, a TFF process run by TFF's runtime (TFF's own learning
processes or the course's process of notebook 05), and `simulation.FedAvgStep`, the same FedAvg
arithmetic on a compiled trainer, with hooks for drop-outs, staleness, deadlines, aggregators and
attackers. Notebooks 05 and 10 write their loops out: there the loop is the lesson.
"""
import collections

import numpy as np
import tensorflow as tf

from helpers import data, runtime

History = collections.namedtuple("History", ["accuracy", "weights"])
History.__doc__ = """accuracy[i]: the global model's accuracy on the evaluation images at the i-th
evaluation (accuracy[0]: before training); weights: the final global weights."""


def run(step, rounds, evaluator, start_weights, seed=None, evaluate_every=1, record=None):
    """Train `rounds` rounds with `step` from `start_weights`; returns a History.

    Evaluates before training, after every `evaluate_every` rounds and after the last;
    `record(weights)` sees the global weights after every round. `seed`, if given, seeds
    Python, NumPy and TensorFlow first. (TFF's DP noise is drawn inside its traced computation,
    out of the global seed's reach: it differs from run to run.)
    """
    if rounds < 0:
        raise ValueError(f"rounds must be 0 or more, got {rounds}")
    if not (isinstance(evaluate_every, int) and evaluate_every >= 1):
        raise ValueError(f"evaluate_every must be a whole number of rounds, 1 or more; got {evaluate_every!r}")
    if seed is not None:
        runtime.set_seed(seed)
    state = step.initialize([np.asarray(w, np.float32) for w in start_weights])
    accuracy = [evaluator.accuracy(step.weights(state))]
    for round_num in range(rounds):
        state = step.next(state, round_num)
        weights = step.weights(state)
        if record is not None:
            record(weights)
        if (round_num + 1) % evaluate_every == 0 or round_num + 1 == rounds:
            accuracy.append(evaluator.accuracy(weights))
    return History(np.array(accuracy), [np.asarray(w) for w in step.weights(state)])


def seeded_weights(model_fn, seed):
    """The weights of a new model drawn from `seed`: where a seeded run starts."""
    runtime.set_seed(seed)
    return [v.numpy() for v in model_fn().trainable_variables]


class ProcessStep:
    """A TFF process as the loop's round step. `datasets_fn(round_num)` gives the round's client
    datasets; an empty list skips the round (nobody took part), unless `skip_empty=False`: a DP
    process must run every round, empty or not, since its noise is released each round and the
    accountant counts every round.

    TFF's learning processes (`tff.learning.algorithms.*`) take the datasets alone; the course's
    process (notebook 05's `build_fedavg_process`) also takes `client_learning_rate`.
    """

    def __init__(self, process, datasets_fn, client_learning_rate=None, skip_empty=True):
        self.process, self.datasets_fn, self.skip_empty = process, datasets_fn, skip_empty
        self.learning = hasattr(process, "get_model_weights")  # a tff.learning process
        if not self.learning and client_learning_rate is None:
            raise ValueError("the course's process takes a client learning rate: "
                             "ProcessStep(process, datasets_fn, client_learning_rate=0.1)")
        if self.learning and client_learning_rate is not None:
            raise ValueError("a tff.learning process has its client optimizer built in: drop "
                             "client_learning_rate (set it when building the process)")
        self.client_learning_rate = client_learning_rate

    def initialize(self, start_weights):
        state = self.process.initialize()
        if not self.learning:
            state["weights"] = start_weights
            return state
        import tensorflow_federated as tff

        weights = tff.learning.models.ModelWeights(trainable=start_weights, non_trainable=[])
        return self.process.set_model_weights(state, weights)

    def next(self, state, round_num):
        datasets = self.datasets_fn(round_num)
        if not datasets and self.skip_empty:
            return state
        if self.learning:
            return self.process.next(state, datasets).state
        return self.process.next(state, datasets, self.client_learning_rate)[0]

    def weights(self, state):
        if self.learning:
            return self.process.get_model_weights(state).trainable
        return state["weights"]


def builtin_fedavg(model_fn, element_spec, client_learning_rate, model_aggregator=None,
                   weighted=True, server_optimizer=None, reduce_loop=False):
    """TFF's built-in FedAvg (`build_weighted_fed_avg`, or `build_unweighted_fed_avg` when not
    `weighted`) for a Keras `model_fn`: client SGD at `client_learning_rate`, server SGD at 1
    unless `server_optimizer`, the dataset-iterator loop the course's `client_update` uses (TFF's
    default dataset-reduce loop when `reduce_loop`), and `model_aggregator` where TFF plugs in
    secure aggregation, DP, robustness or compression (default: TFF's)."""
    import tensorflow_federated as tff

    algorithms = tff.learning.algorithms
    build = algorithms.build_weighted_fed_avg if weighted else algorithms.build_unweighted_fed_avg
    loop = tff.learning.LoopImplementation
    options = {} if model_aggregator is None else {"model_aggregator": model_aggregator}
    return build(
        lambda: tff.learning.models.from_keras_model(
            model_fn(), input_spec=element_spec,
            loss=tf.keras.losses.SparseCategoricalCrossentropy()),
        client_optimizer_fn=tff.learning.optimizers.build_sgdm(learning_rate=client_learning_rate),
        server_optimizer_fn=server_optimizer or tff.learning.optimizers.build_sgdm(learning_rate=1.0),
        loop_implementation=loop.DATASET_REDUCE if reduce_loop else loop.DATASET_ITERATOR,
        **options)


class Evaluator:
    """Accuracy of global weights on centrally held images (`pixels` in TFF's convention)."""

    def __init__(self, model_fn, pixels, labels):
        self.model_fn = model_fn
        self.inputs = data.to_model_input(pixels)
        self.labels = np.asarray(labels)
        self._new_model()

    def _new_model(self):
        self.model = self.model_fn()
        # Compiled once per model: about twice as fast as calling the Keras model eagerly.
        self._classify = tf.function(
            lambda x: tf.argmax(self.model(x, training=False), axis=-1),
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32)])

    def copy(self):
        """The same images with a model of its own: one per thread when runs train side by side."""
        twin = Evaluator.__new__(Evaluator)
        twin.model_fn, twin.inputs, twin.labels = self.model_fn, self.inputs, self.labels
        twin._new_model()
        return twin

    def predictions(self, weights):
        try:
            return self._predict(weights)
        except ValueError:
            # Building a TFF learning process (tff.learning.algorithms.*) invalidates Keras models
            # made before it ("Your Layer or Model is in an invalid state"): make a new one.
            self._new_model()
            return self._predict(weights)

    def _predict(self, weights, chunk=512):
        self.model.set_weights([np.asarray(w) for w in weights])
        # In chunks: the convolution's output for all 1,180 test images at once is about 100 MB
        # (1,180 × 26 × 26 × 32 float32), and the allocator keeps such a peak for the session.
        return np.concatenate([self._classify(self.inputs[start:start + chunk]).numpy()
                               for start in range(0, len(self.labels), chunk)])

    def accuracy(self, weights):
        return float(np.mean(self.predictions(weights) == self.labels))

    def per_digit(self, weights):
        predicted = self.predictions(weights)
        return np.array([np.mean(predicted[self.labels == d] == d) for d in range(10)])
