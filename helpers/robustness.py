"""Robust aggregators and attackers, for notebook 08's attack grid.

An aggregator takes (deltas (clients, parameters), weights (clients,)) and returns the mean delta,
the signature `simulation.FedAvgStep` plugs in; an attack is a `tamper` hook of that step, in which
some clients send what the attacker chose instead of their honest update.
"""
import collections

import numpy as np

from helpers import populations
from helpers.simulation import weighted_mean

ATTACKS = ("sign flip", "boosted", "gaussian noise", "label flip", "weight inflation", "backdoor")
BACKDOOR_TARGET = 0  # the backdoor makes any image carrying the trigger read as this digit
BOOST = 10.0  # the boosted attacker scales its update by about the number of clients in a round
INFLATION = 100.0  # the inflating attacker claims this many times its real number of examples


class RobustnessInputError(ValueError):
    """Bad input to the robustness helpers: an unknown aggregator or attack, a fraction out of range, a wrong shape."""


# --- aggregators: (updates (n, P), weights (n,)) -> aggregate (P,) ---------------------------

def _check(updates, weights):
    updates, weights = np.asarray(updates, np.float64), np.asarray(weights, np.float64)
    if updates.ndim != 2 or weights.shape != (len(updates),):
        raise RobustnessInputError(f"updates must be (clients, parameters) and weights (clients,); got {updates.shape} "
                                   f"and {weights.shape}")
    return updates, weights


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


# --- attackers -------------------------------------------------------------------------------

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
        return populations.Clients([pixels], [(9 - labels).astype(np.int32)])
    if mode == "backdoor":
        half = np.arange(len(labels)) % 2 == 0
        pixels = np.where(half[:, None, None], add_trigger(pixels), pixels)
        return populations.Clients([pixels], [np.where(half, target, labels).astype(np.int32)])
    raise RobustnessInputError(f"unknown poisoning {mode!r}: 'label flip' or 'backdoor'")


def attack(name, fraction, trainer, clients, seed, attack_rounds=None):
    """A `tamper` hook of `simulation.FedAvgStep`: in each of the first `attack_rounds` rounds
    (default: all), the first round(fraction × arrived) clients of the round send the attack
    `name`'s update instead of their honest one."""
    if not 0 <= fraction < 0.5:
        raise RobustnessInputError(f"the fraction of malicious clients must be in [0, 0.5), got {fraction}")
    if name not in ATTACKS:
        raise RobustnessInputError(f"unknown attack {name!r}: choose one of {list(ATTACKS)}")
    rng = np.random.default_rng([seed, 8])

    def malicious(update, weights, round_num):
        """The update an attacker sends instead of `update`, its honest one."""
        delta, n = update.delta, update.num_examples
        own_seed = [seed, round_num, update.cid]
        if name == "sign flip":
            delta = -delta
        elif name == "boosted":
            delta = -BOOST * delta
        elif name == "gaussian noise":
            delta = rng.normal(0, BOOST * np.linalg.norm(delta) / np.sqrt(delta.size), delta.size)
        elif name == "label flip":  # honest code on poisoned data
            delta, n = trainer.update(weights, poisoned(clients, update.cid, "label flip"), 0, own_seed)
        elif name == "weight inflation":  # a sign-flipped update that claims to speak for many examples
            delta, n = -delta, INFLATION * n
        else:  # backdoor: model replacement, train on triggered images then boost (Bagdasaryan et al., 2020)
            poison = poisoned(clients, update.cid, "backdoor", BACKDOOR_TARGET)
            delta, n = trainer.update(weights, poison, 0, own_seed)
            delta = BOOST * delta
        return update._replace(delta=delta, num_examples=n)

    def tamper(updates, weights, round_num):
        if attack_rounds is not None and round_num >= attack_rounds:
            return updates
        attackers = int(round(fraction * len(updates)))
        return [malicious(u, weights, round_num) if i < attackers else u for i, u in enumerate(updates)]
    return tamper
