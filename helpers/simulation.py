"""A fast FedAvg round loop for the many short, seeded runs of notebooks 06 (experiments and
playground) and 08 (the attack grid).

The arithmetic is the course's FedAvg: each client runs notebook 03's `client_update` (plain SGD on
the mean cross-entropy, batches of 20, FedProx's proximal gradient when `mu` > 0), the server takes
the example-weighted mean delta and steps with a TFF optimizer (notebook 04's
`server_optimizer_update`). What is left out is TFF's runtime: a client's epochs run as one compiled
TensorFlow loop over its images held in memory, and the round loop is Python. Notebook 06 checks,
round for round, that this loop and the course's TFF process (`helpers.fedavg`) give the same model.
"""
import collections

import numpy as np
import tensorflow as tf

from helpers import data, experiments as ex


def flatten(weights):
    return np.concatenate([np.asarray(w, np.float64).ravel() for w in weights])


def unflatten(vector, like):
    out, start = [], 0
    for w in like:
        size = int(np.prod(np.shape(w)))
        out.append(np.asarray(vector[start:start + size]).reshape(np.shape(w)).astype(np.float32))
        start += size
    return out


def as_model_input(pixels):
    """Shipped uint8 pixels (255 = background) -> the model's input as a NumPy array (ink = 1.0)."""
    return data.to_model_input(np.asarray(pixels, np.float32) / 255.0).numpy()


class Trainer:
    """One client's local training, as the course's `client_update` does it, compiled once.

    `update(weights, clients, cid, seed, epochs, mu, max_batches)` -> (flattened delta, number of
    examples trained on). Each epoch visits the client's images once in a fresh order drawn from
    `seed`, in batches of `batch_size` (the last one smaller); `max_batches` stops early (a deadline);
    `mu` > 0 adds FedProx's proximal gradient mu * (w - w_received) to every step. `batches` gives the
    same batches as a dataset in the course's format, so a TFF process can train on exactly them.
    """

    def __init__(self, model_fn, learning_rate=0.1, batch_size=20):
        self.model, self.batch_size, self.learning_rate = model_fn(), batch_size, learning_rate
        variables = self.model.trainable_variables
        received = [tf.Variable(v) for v in variables]
        loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()

        @tf.function(input_signature=[tf.TensorSpec([None, 28, 28], tf.uint8), tf.TensorSpec([None], tf.int32),
                                      tf.TensorSpec([None, batch_size], tf.int32), tf.TensorSpec([], tf.float32),
                                      tf.TensorSpec([], tf.float32)])
        def local_training(pixels, y, batches, learning_rate, mu):
            # One graph for all of a client's steps: no Python between batches. Rows of `batches` are
            # example indices, padded with -1 where the last batch of an epoch is short. Pixels stay
            # uint8 as shipped and become the model's input batch by batch: a float copy of every
            # population's images, kept per trainer, was what grew notebook 06's memory by 300 MB.
            for keep, variable in zip(received, variables):
                keep.assign(variable)
            for i in tf.range(tf.shape(batches)[0]):
                index = tf.boolean_mask(batches[i], batches[i] >= 0)
                with tf.GradientTape() as tape:
                    x = data.to_model_input(tf.cast(tf.gather(pixels, index), tf.float32) / 255.0)
                    loss = loss_fn(tf.gather(y, index), self.model(x, training=True))
                for variable, gradient, start in zip(variables, tape.gradient(loss, variables), received):
                    variable.assign_sub(learning_rate * (gradient + mu * (variable - start)))
            return tf.constant(0)
        self._local_training = local_training

    def order(self, num_examples, seed, epochs=1, max_batches=None):
        """(batches, batch_size) example indices, -1 padding; each epoch shuffled afresh from `seed`."""
        rng, rows = np.random.default_rng(seed), []
        for _ in range(epochs):
            order = rng.permutation(num_examples)
            for start in range(0, num_examples, self.batch_size):
                row = np.full(self.batch_size, -1, np.int32)
                piece = order[start:start + self.batch_size]
                row[:len(piece)] = piece
                rows.append(row)
        rows = rows[:max_batches] if max_batches is not None else rows
        return np.array(rows, np.int32).reshape(-1, self.batch_size)

    def update(self, weights, clients, cid, seed, epochs=1, mu=0.0, max_batches=None):
        if not 0 <= cid < len(clients.labels):
            raise data.UnknownClientError(f"Unknown client {cid!r}: this population has clients 0..{len(clients.labels) - 1}.")
        x, y = np.asarray(clients.pixels[cid]), np.asarray(clients.labels[cid], np.int32)
        if x.dtype != np.uint8:
            raise TypeError(f"client {cid}'s pixels are {x.dtype}; the trainer takes them as shipped, uint8 with 255 = "
                            f"background (experiments.writer_clients and redeal keep them so)")
        batches = self.order(len(y), seed, epochs, max_batches)
        for variable, value in zip(self.model.trainable_variables, weights):
            variable.assign(value)
        self._local_training(x, y, batches, self.learning_rate, float(mu))
        trained = int(np.sum(batches >= 0))
        return flatten([v.numpy() - np.asarray(w) for v, w in zip(self.model.trainable_variables, weights)]), float(trained)

    def batches(self, clients, cid, seed, epochs=1, max_batches=None):
        """The batches `update` trains on, as a dataset in the course's format (for a TFF process)."""
        x, y = as_model_input(clients.pixels[cid]), np.asarray(clients.labels[cid], np.int32)
        rows = self.order(len(y), seed, epochs, max_batches)
        sizes = (rows >= 0).sum(axis=1).astype(np.int64)
        examples = collections.OrderedDict(x=tf.constant(x[rows[rows >= 0]]), y=tf.constant(y[rows[rows >= 0]]))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        # Cut the examples where `update`'s batches end (each epoch's last batch may be short).
        return tf.data.Dataset.from_tensor_slices((starts, sizes)).map(
            lambda start, size: collections.OrderedDict((key, value[start:start + size]) for key, value in examples.items()))


def initial_weights(model_fn, seed):
    """The model a seeded run starts from (the same as `experiments.run` starts from)."""
    from helpers import runtime

    runtime.set_seed(seed)
    return [v.numpy() for v in model_fn().trainable_variables]


class ServerOptimizer:
    """A TFF optimizer (`tff.learning.optimizers.*`) applied to the round's mean delta, as notebook 04's
    `server_optimizer_update` does: the pseudo-gradient is the negated mean delta."""

    def __init__(self, optimizer, weights):
        self.optimizer = optimizer
        self.state = optimizer.initialize([tf.TensorSpec(np.shape(w), tf.float32) for w in weights])

    def step(self, weights, mean_delta):
        gradient = [tf.constant(-d) for d in unflatten(mean_delta, weights)]
        self.state, new = self.optimizer.next(self.state, [tf.constant(w) for w in weights], gradient)
        return [np.asarray(w) for w in new]


Update = collections.namedtuple("Update", ["cid", "delta", "num_examples", "staleness"])
Update.__doc__ = "What one client sent: its flattened delta, how many examples it trained on, how many rounds late it is."


def weighted_mean(updates):
    """FedAvg's aggregate: the mean of the deltas weighted by their examples."""
    counts = np.array([u.num_examples for u in updates])
    return counts @ np.array([u.delta for u in updates]) / counts.sum()


def run(trainer, clients, rounds, evaluator, *, seed=0, start_weights=None, model_fn=None, clients_per_round=10,
        local_epochs=1, mu=0.0, server_optimizer=None, eligible=None, reports=None, delay=None, max_batches=None,
        aggregate=weighted_mean, evaluate_every=1, record=None):
    """FedAvg for `rounds` rounds; returns experiments.History (accuracy before training and after every
    `evaluate_every` rounds, final weights).

    Each round samples `clients_per_round` clients (`experiments.sample`, from `eligible` if given). Hooks,
    each optional, change one thing:
      reports(sampled, round_num, seed) -> the sampled clients whose updates arrive (drop-outs);
      delay(cid, round_num, seed) -> how many rounds late this client's update is (it trained on that old model);
      max_batches(cid, round_num, seed) -> how many batches the client finishes (a deadline), None for all;
      aggregate(updates) -> the flattened mean delta the server applies (default: the weighted mean);
      record(weights) is called with the global weights after every round.
    The server applies the aggregate with `server_optimizer` (a TFF optimizer; default SGD at rate 1, plain
    FedAvg). A round where nobody reports leaves the model as it was.
    """
    import tensorflow_federated as tff

    weights = [np.asarray(w, np.float32) for w in start_weights] if start_weights is not None else \
        initial_weights(model_fn or (lambda: trainer.model), seed)
    server = ServerOptimizer(server_optimizer or tff.learning.optimizers.build_sgdm(learning_rate=1.0), weights)
    past, accuracy = [weights], [evaluator.accuracy(weights)]
    for round_num in range(rounds):
        sampled = ex.sample(len(clients.labels), clients_per_round, round_num, seed, eligible)
        arrived = list(reports(sampled, round_num, seed)) if reports else sampled
        updates = []
        for cid in arrived:
            late = int(delay(cid, round_num, seed)) if delay else 0
            start = past[max(0, len(past) - 1 - late)]
            delta, n = trainer.update(start, clients, cid, seed=[seed, round_num, cid], epochs=local_epochs, mu=mu,
                                      max_batches=max_batches(cid, round_num, seed) if max_batches else None)
            if n > 0:
                updates.append(Update(cid, delta, n, late))
        if updates:
            weights = server.step(weights, aggregate(updates))
        past.append(weights)
        if record is not None:
            record(weights)
        if (round_num + 1) % evaluate_every == 0 or round_num + 1 == rounds:
            accuracy.append(evaluator.accuracy(weights))
    return ex.History(np.array(accuracy), weights)


class Runner:
    """Many seeded runs, trained side by side: `threads` threads, each with its own trainer and its own
    copy of every evaluator (TensorFlow runs ops outside Python's lock, so two runs use two cores).
    Each run gives the same result as `run` alone: its start model is drawn from its seed before any
    thread starts, and nothing else is shared."""

    def __init__(self, model_fn, learning_rate=0.1, threads=2):
        self.model_fn, self.threads = model_fn, threads
        self.trainers = [Trainer(model_fn, learning_rate) for _ in range(threads)]
        self._evaluators = {}

    def _evaluator(self, evaluator, slot):
        key = (id(evaluator), slot)
        if key not in self._evaluators:
            self._evaluators[key] = (evaluator, evaluator.copy())  # keeps the original alive: ids stay unique
        return self._evaluators[key][1]

    def run_all(self, jobs):
        """jobs: dicts of `run`'s arguments (clients, rounds, evaluator, seed, ...). Returns their Histories, in order."""
        import concurrent.futures
        import queue

        jobs = [dict(job) for job in jobs]
        for job in jobs:  # in this thread: seeding is global, and Keras models are best made here
            if "start_weights" not in job:
                job["start_weights"] = initial_weights(self.model_fn, job.get("seed", 0))
            for slot in range(self.threads):
                self._evaluator(job["evaluator"], slot)
        slots = queue.Queue()
        for slot in range(self.threads):
            slots.put(slot)

        def one(job):
            slot = slots.get()
            try:
                evaluator = self._evaluator(job.pop("evaluator"), slot)
                return run(self.trainers[slot], job.pop("clients"), job.pop("rounds"), evaluator, **job)
            finally:
                slots.put(slot)
        with concurrent.futures.ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(one, jobs))
