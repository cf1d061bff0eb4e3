"""Robust aggregators and attackers, for notebook 08's attack grid.

An aggregator takes (deltas (clients, parameters), weights (clients,)) and returns the mean delta,
the signature `simulation.FedAvgStep` plugs in; an attack is a `tamper` hook of that step, in which
the clients of a fixed compromised set send what the attacker chose instead of their honest update
whenever the server samples them.
"""
import collections
import threading

import numpy as np
import scipy.stats

from helpers import populations
from helpers.simulation import weighted_mean

NAIVE = ("sign flip", "boosted", "gaussian noise", "label flip", "weight inflation")
ADAPTIVE = ("ALIE", "min-max")  # they read the round's honest updates (an omniscient attacker)
ATTACKS = NAIVE + ADAPTIVE + ("backdoor",)
BACKDOOR_TARGET = 0  # the backdoor makes any image carrying the trigger read as this digit
BOOST = 10.0  # the boosted attacker scales its update by about the number of clients in a round
INFLATION = 100.0  # the inflating attacker claims this many times its real number of examples


class RobustnessInputError(ValueError):
    """Bad input to the robustness helpers: an unknown aggregator or attack, a fraction out of range, a wrong shape."""


# --- aggregators: (updates (n, P), weights (n,)) -> aggregate (P,) ---------------------------

def _check(updates, weights=None):
    """(clients, parameters) updates and (clients,) weights as float64; weights None: not checked."""
    updates = np.asarray(updates, np.float64)
    weights = np.ones(len(np.atleast_2d(updates))) if weights is None else np.asarray(weights, np.float64)
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
    if not 0 <= trim < 0.5:
        raise RobustnessInputError(f"trim must be in [0, 0.5): it cuts that fraction from each end, got {trim}")
    updates, _ = _check(updates, weights)
    k = int(np.floor(trim * len(updates)))
    ordered = np.sort(updates, axis=0)
    return ordered[k:len(updates) - k].mean(axis=0)


def krum_selection(updates, num_byzantine=3):
    """The rows multi-Krum (Blanchard et al., 2017) keeps: score each update by the summed squared
    distances to its n − f − 2 nearest others; return the indices of the n − f best-scored updates,
    best first. Krum's guarantee needs n > 2f + 2 updates for f Byzantine ones; fewer are refused."""
    updates, _ = _check(updates)
    n = len(updates)
    if n <= 2 * num_byzantine + 2:
        raise RobustnessInputError(
            f"multi-Krum with f = {num_byzantine} Byzantine clients needs more than 2f + 2 = "
            f"{2 * num_byzantine + 2} updates (Blanchard et al., 2017), got {n}: sample more clients "
            f"a round or assume a smaller f")
    squared = np.sum(updates**2, axis=1)
    distances = squared[:, None] + squared[None, :] - 2 * updates @ updates.T
    nearest = n - num_byzantine - 2
    scores = np.sort(distances + np.diag(np.full(n, np.inf)), axis=1)[:, :nearest].sum(axis=1)
    return np.argsort(scores, kind="stable")[:n - num_byzantine]


def multi_krum(updates, weights, num_byzantine=3):
    """Multi-Krum: the mean of the n − f updates `krum_selection` keeps (claimed weights ignored)."""
    updates, _ = _check(updates, weights)
    return updates[krum_selection(updates, num_byzantine)].mean(axis=0)


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


def compromised_clients(num_clients, fraction, seed):
    """The clients an attacker controls for a whole run: round(fraction × num_clients) of the ids
    0 … num_clients − 1, drawn once from `seed`. How many of them a round samples varies."""
    if not 0 <= fraction < 0.5:
        raise RobustnessInputError(f"the fraction of compromised clients must be in [0, 0.5), got {fraction}")
    rng = np.random.default_rng([seed, 34])
    chosen = rng.choice(num_clients, int(round(fraction * num_clients)), replace=False)
    return frozenset(int(cid) for cid in chosen)


def alie_z(num_clients, num_attackers):
    """ALIE's z (Baruch et al., 2019): with n clients and m attackers, s = ⌊n/2 + 1⌋ − m honest
    clients must look farther from the mean than the attackers' value; z = Φ⁻¹((n − s) / n).
    (At least one such client: with a majority of attackers, s would be 0 or less.)"""
    supporters = max(1, num_clients // 2 + 1 - num_attackers)
    return float(scipy.stats.norm.ppf((num_clients - supporters) / num_clients))


def alie_update(honest, num_clients, num_attackers):
    """ALIE's update: mean − z · std of the honest updates (rows), coordinate by coordinate (std
    with ddof = 0): close enough to the honest ones that medians and distances do not reject it."""
    honest = np.asarray(honest, np.float64)
    return honest.mean(axis=0) - alie_z(num_clients, num_attackers) * honest.std(axis=0)


def min_max_update(honest):
    """Min-max (Shejwalkar & Houmansadr, 2021), with its "inverse unit vector" perturbation: the
    honest updates' mean μ pushed against its own direction, μ − γ·μ/‖μ‖, with the largest γ for
    which the update is no farther from any honest update than the two farthest honest updates
    are from each other. The paper searches for γ; here each constraint ‖μ − xᵢ + γp‖² ≤ D² is a
    quadratic in γ, solved exactly."""
    honest = np.asarray(honest, np.float64)
    mean = honest.mean(axis=0)
    direction = -mean / max(float(np.linalg.norm(mean)), 1e-12)
    squared = np.sum(honest**2, axis=1)
    pairwise = squared[:, None] + squared[None, :] - 2 * honest @ honest.T
    limit = max(0.0, float(pairwise.max()))  # D², the largest honest distance, squared
    a = float(direction @ direction)
    if a == 0:  # all honest updates agree: nowhere to push
        return mean
    offsets = mean - honest
    b = offsets @ direction
    c = np.sum(offsets**2, axis=1) - limit  # ≤ 0: the mean is within D of every honest update
    gamma = np.min((-b + np.sqrt(np.maximum(b**2 - a * c, 0.0))) / a)
    return mean + gamma * direction


# Poisoned training runs on one trainer; `simulation.Runner` runs attacks in two threads at once.
_TRAINING = threading.Lock()


def attack(name, compromised, trainer, clients, seed, attack_rounds=None, joins=False):
    """A `tamper` hook of `simulation.FedAvgStep`: in each of the first `attack_rounds` rounds
    (default: all), every client of `compromised` (a fixed set of client ids, e.g. from
    `compromised_clients`) among the round's updates sends the attack `name`'s update instead of
    its honest one. `joins=True`: the compromised clients the round did not sample take the
    places of its first honest clients (an attacker present in every attack round: a worst case).
    ALIE and min-max read every honest update of the round (the omniscient attacker of their
    papers); all their attackers send the same update."""
    if name not in ATTACKS:
        raise RobustnessInputError(f"unknown attack {name!r}: choose one of {list(ATTACKS)}")
    if isinstance(compromised, (int, float, np.number)) or not all(
            isinstance(cid, (int, np.integer)) for cid in compromised):
        raise RobustnessInputError(
            f"compromised must be a set of client ids, got {compromised!r}: for a fraction of the "
            f"population, pass compromised_clients(num_clients, fraction, seed)")
    compromised = frozenset(int(cid) for cid in compromised)
    rng = np.random.default_rng([seed, 8])

    def poisoned_update(global_weights, cid, mode, round_num):
        with _TRAINING:
            return trainer.update(global_weights, poisoned(clients, cid, mode, BACKDOOR_TARGET), 0,
                                  [seed, round_num, cid])

    def malicious(update, global_weights, round_num):
        """The update an attacker sends instead of `update`, its honest one."""
        delta, n = update.delta, update.num_examples
        if name == "sign flip":
            delta = -delta
        elif name == "boosted":
            delta = -BOOST * delta
        elif name == "gaussian noise":
            delta = rng.normal(0, BOOST * np.linalg.norm(delta) / np.sqrt(delta.size), delta.size)
        elif name == "label flip":  # honest code on poisoned data
            delta, n = poisoned_update(global_weights, update.cid, "label flip", round_num)
        elif name == "weight inflation":  # a sign-flipped update that claims to speak for many examples
            delta, n = -delta, INFLATION * n
        else:  # backdoor: model replacement, train on triggered images then boost (Bagdasaryan et al., 2020)
            delta, n = poisoned_update(global_weights, update.cid, "backdoor", round_num)
            delta = BOOST * delta
        return update._replace(delta=delta, num_examples=n)

    def tamper(updates, global_weights, round_num):
        if attack_rounds is not None and round_num >= attack_rounds:
            return updates
        updates = list(updates)
        if joins:
            present = {u.cid for u in updates}
            absent = sorted(compromised - present)
            honest_slots = [i for i, u in enumerate(updates) if u.cid not in compromised]
            for slot, cid in zip(honest_slots, absent):  # the attacker takes this client's place
                updates[slot] = updates[slot]._replace(cid=cid)
        bad = [i for i, u in enumerate(updates) if u.cid in compromised]
        if not bad:
            return updates
        if name in ADAPTIVE:
            honest = np.array([u.delta for u in updates if u.cid not in compromised])
            if len(honest) < 2:  # nothing to estimate a spread from
                return updates
            sent = (alie_update(honest, len(updates), len(bad)) if name == "ALIE"
                    else min_max_update(honest))
            return [u._replace(delta=sent) if i in bad else u for i, u in enumerate(updates)]
        return [malicious(u, global_weights, round_num) if i in bad else u for i, u in enumerate(updates)]
    return tamper
