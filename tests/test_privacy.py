"""helpers.privacy (notebook 07): secure aggregation's arithmetic, the accountants, the measurements,
and clear errors for bad input."""
import math
import random

import numpy as np
import pytest

from helpers import privacy, runtime


def test_fixed_point_round_trip_and_sum_within_resolution():
    rng = np.random.default_rng(0)
    values = np.clip(rng.normal(0, 0.3, size=(5, 1000)), -1.0, 1.0)  # within the clip: no value is clipped
    total = np.zeros(1000, np.uint32)
    for row in values:
        total = total + privacy.encode(row, 1.0, num_clients=5)
    step = privacy.resolution(1.0, num_clients=5)
    assert np.abs(privacy.decode(total, 1.0, num_clients=5) - values.sum(0)).max() <= 5 * step / 2 + 1e-15
    # values beyond the clip are clipped, never wrapped into the other sign
    clipped = privacy.decode(privacy.encode([5.0, -5.0], 1.0), 1.0)
    np.testing.assert_allclose(clipped, [1.0, -1.0], atol=1e-8)


def test_encode_refuses_non_finite_updates_and_bad_clip():
    with pytest.raises(privacy.PrivacyInputError, match="non-finite"):
        privacy.encode([0.1, np.nan, np.inf], 1.0)
    with pytest.raises(privacy.PrivacyInputError, match="clip must be positive"):
        privacy.encode([0.1], 0.0)


def _pi_floor(bits):
    """floor(2**bits * pi), by Machin's formula pi = 16 atan(1/5) - 4 atan(1/239) in integers."""
    guard = bits + 64
    one = 1 << guard

    def atan_inverse(x):  # atan(1/x) * one
        total, power, k = 0, one // x, 0
        while power:
            term = power // (2 * k + 1)
            total += -term if k % 2 else term
            power //= x * x
            k += 1
        return total
    return (16 * atan_inverse(5) - 4 * atan_inverse(239)) >> 64


def test_the_group_is_rfc_3526s_safe_prime_and_g_generates_the_prime_order_subgroup():
    p, g, q = privacy.GROUP_PRIME, privacy.GENERATOR, privacy.GROUP_ORDER
    assert p == 2**2048 - 2**1984 - 1 + 2**64 * (_pi_floor(1918) + 124476)  # RFC 3526, section 3
    assert p - 1 == 2 * q and privacy.is_probable_prime(p) and privacy.is_probable_prime(q)
    # g**q = 1 and g != 1: the order of g divides the prime q, so it is q (a subgroup with no small
    # subgroup inside: Pohlig-Hellman has nothing to split)
    assert pow(g, q, p) == 1 and g % p != 1
    # Miller-Rabin can fail: it rejects a composite of two large primes and a Carmichael number
    assert not privacy.is_probable_prime((2**89 - 1) * (2**107 - 1))
    assert not privacy.is_probable_prime(561) and privacy.is_probable_prime(2**127 - 1)
    # the course's old group: p - 1 for 2**127 - 1 is smooth (largest prime factor below 2**37)
    old = 2**127 - 1
    rest = old - 1
    for f in (2, 3, 7, 19, 43, 73, 127, 337, 5419, 92737, 649657, 77158673929):
        while rest % f == 0:
            rest //= f
    assert rest == 1 and 77158673929 < 2**37


def _pohlig_hellman(h, g, p, factors):
    """(x, steps): x with g**x = h mod p, for a group whose order p - 1 splits into the small prime
    `factors` (each to the power it divides p - 1): one small discrete log per factor, joined by the
    CRT; `steps` counts the group multiplications of the baby and giant steps (the attack's cost)."""
    order, residues, moduli, steps = p - 1, [], [], 0
    for f in factors:
        e = 0
        while order % f ** (e + 1) == 0:
            e += 1
        m = f**e
        gm, hm = pow(g, order // m, p), pow(h, order // m, p)
        # baby-step giant-step in the subgroup of order m
        step = math.isqrt(m) + 1
        table = {pow(gm, j, p): j for j in range(step)}
        giant, y = pow(gm, -step, p), hm
        steps += step
        for i in range(step + 1):
            steps += 1
            if y in table:
                residues.append((i * step + table[y]) % m)
                break
            y = y * giant % p
        moduli.append(m)
    x, mod = 0, 1
    for r, m in zip(residues, moduli):  # Chinese remainder theorem
        x += mod * ((r - x) * pow(mod, -1, m) % m)
        mod *= m
    return x % mod, steps


def test_pohlig_hellman_breaks_the_old_group_and_finds_nothing_to_split_in_the_new_one():
    old = 2**127 - 1  # the course's old group: p - 1 has only small prime factors
    factors = (2, 3, 7, 19, 43, 73, 127, 337, 5419, 92737, 649657, 77158673929)
    g = 43  # the smallest generator of the whole group mod 2**127 - 1: g**((p-1)/f) != 1 for each f
    assert all(pow(g, (old - 1) // f, old) != 1 for f in factors)
    secret = random.Random(7).randrange(2, old - 1)
    found, steps = _pohlig_hellman(pow(g, secret, old), g, old, factors)
    assert found == secret
    # cheap: the largest factor, about 2**36, costs about 2 * sqrt(2**36) steps; under 600,000 in all
    # (counted, not timed: a second or so in Python)
    assert steps < 600_000
    # the new group: g generates the subgroup whose order is the prime q (2047 bits), so the same
    # attack has one factor, q itself, and its baby-step giant-step needs about sqrt(q) steps
    p, q = privacy.GROUP_PRIME, privacy.GROUP_ORDER
    assert pow(privacy.GENERATOR, q, p) == 1 and privacy.is_probable_prime(q) and q.bit_length() == 2047


def test_shamir_any_threshold_shares_rebuild_the_secret_and_fewer_refuse():
    rng = random.Random(1)
    secret = rng.randrange(privacy.FIELD_PRIME)
    shares = privacy.share(secret, 3, 6, rng)
    assert privacy.reconstruct(shares[2:5], 3) == secret
    assert privacy.reconstruct([shares[5], shares[0], shares[3]], 3) == secret
    with pytest.raises(privacy.PrivacyInputError, match="at least 3"):
        privacy.reconstruct(shares[:2], 3)


def test_prg_is_shake_256_and_key_agreement_gives_both_sides_one_seed():
    import hashlib

    stream = hashlib.shake_256(b"fedcourse mask|" + (5).to_bytes(32, "big")).digest(12)
    assert privacy.prg(5, 3).tolist() == list(np.frombuffer(stream, "<u4"))
    assert not np.array_equal(privacy.prg(5, 1000), privacy.prg(6, 1000))
    with pytest.raises(privacy.PrivacyInputError, match="2\\*\\*256"):
        privacy.prg(-1, 3)
    rng = random.Random(3)
    a, b = rng.getrandbits(320), rng.getrandbits(320)
    p, g = privacy.GROUP_PRIME, privacy.GENERATOR
    key = privacy.pair_key(pow(pow(g, b, p), a, p), 0, 1)
    assert key == privacy.pair_key(pow(pow(g, a, p), b, p), 1, 0)
    assert key != privacy.pair_key(pow(pow(g, a, p), b, p), 0, 2)  # the ids enter the key


def _round(n=8, threshold=5, size=4000, seed=2):
    updates = np.random.default_rng(seed).normal(0, 0.1, size=(n, size))
    protocol = privacy.SecureAggregation(n, threshold, rng=random.Random(seed))
    sent = {u: protocol.masked_input(u, privacy.encode(updates[u], 1.0, num_clients=n)) for u in range(n)}
    return updates, protocol, sent


def test_secure_aggregation_sum_exact_with_dropouts():
    updates, protocol, sent = _round()
    everyone = privacy.decode(protocol.unmask(sent), 1.0, num_clients=8)
    assert np.abs(everyone - updates.sum(0)).max() <= 8 * privacy.resolution(1.0, num_clients=8)
    survivors = {u: y for u, y in sent.items() if u not in (1, 6)}
    total = privacy.decode(protocol.unmask(survivors), 1.0, num_clients=8)
    expected = updates[sorted(survivors)].sum(0)
    assert np.abs(total - expected).max() <= 8 * privacy.resolution(1.0, num_clients=8)
    # without the dropped clients' masks removed, the sum is garbage: the recovery is what works
    plain = np.zeros(4000, np.uint32)
    for y in survivors.values():
        plain = plain + y
    assert np.abs(privacy.decode(plain, 1.0, num_clients=8) - expected).max() > 1.0


def test_double_masking_leaves_an_update_masked_when_only_its_pairwise_masks_are_removed():
    updates, protocol, sent = _round()
    plain = privacy.encode(updates[3], 1.0, num_clients=8)
    # a server that claims client 3 dropped out rebuilds sk_3 and peels off 3's pairwise masks...
    sk_3 = privacy.reconstruct(protocol.sk_shares[3][:5], 5)
    assert sk_3 == protocol.sk[3]
    peeled = sent[3] - protocol.pairwise_mask(3, 4000, sk=sk_3)
    # ...and is left with the update under the self mask, which only shares of b_3 remove
    assert np.array_equal(peeled, plain + privacy.prg(protocol.self_seed[3], 4000))
    assert np.mean(peeled == plain) < 0.01
    assert privacy.uniformity_pvalue(peeled) > 1e-4  # no bias this test can detect
    assert privacy.uniformity_pvalue(plain) < 1e-6  # the unmasked encoding: the test can fail


def test_too_few_survivors_and_thresholds_that_make_no_sense_are_refused():
    updates, protocol, sent = _round()
    with pytest.raises(privacy.PrivacyInputError, match="needs 5"):
        protocol.unmask({u: sent[u] for u in range(4)})
    assert privacy.min_threshold(10) == 6 and privacy.min_threshold(10, "active") == 7
    assert privacy.min_threshold(9) == 5 and privacy.min_threshold(9, "active") == 7
    for n, t, adversary in [(10, 5, "honest-but-curious"), (3, 4, "honest-but-curious"),
                            (2, 2, "honest-but-curious")]:
        with pytest.raises(privacy.PrivacyInputError, match="threshold"):
            privacy.SecureAggregation(n, t, adversary)
    with pytest.raises(privacy.PrivacyInputError, match="unknown adversary"):
        privacy.min_threshold(10, "lazy")
    # no signatures, key authentication or consistency check: an active server is refused, whatever t
    for t in (6, 7, 10):
        with pytest.raises(privacy.PrivacyInputError, match="honest-but-curious protocol only"):
            privacy.SecureAggregation(10, t, "active")


def test_received_public_keys_outside_the_prime_order_subgroup_are_refused():
    p, q = privacy.GROUP_PRIME, privacy.GROUP_ORDER
    # 1 and p - 1 (the subgroup of order 2) make the shared secret one of two values; 11 is not a
    # square mod p (11**q = -1), so it lies outside the subgroup of order q
    assert pow(11, q, p) == p - 1
    for bad in (0, 1, p - 1, p, 11):
        with pytest.raises(privacy.PrivacyInputError, match="subgroup of prime order"):
            privacy.check_public_key(bad)
    assert privacy.check_public_key(pow(2, 12345, p)) == pow(2, 12345, p)
    protocol = privacy.SecureAggregation(4, 3, rng=random.Random(0))
    protocol.pk[2] = p - 1  # a server that swaps client 2's key for one in the order-2 subgroup
    with pytest.raises(privacy.PrivacyInputError, match="subgroup of prime order"):
        protocol.masked_input(0, np.zeros(8, np.uint32))


def test_accountants_match_the_figures_checked_by_hand():
    # dp-accounting 0.4.3, noise 1.0, 15 rounds, delta 1e-3, 20 of 90 clients (TFF_FACTS, checked 2026-12-03)
    assert privacy.epsilon(1.0, 15, 1e-3, q=20 / 90) == pytest.approx(5.04, abs=0.01)
    fixed = privacy.epsilon(1.0, 15, 1e-3, sampling="fixed", population=90, clients_per_round=20)
    assert fixed == pytest.approx(8.57, abs=0.01)
    assert privacy.epsilon(1.0, 15, 1e-3, sampling="none") == pytest.approx(20.46, abs=0.01)
    # TFF's DP tutorial reports (2, 1e-5)-DP for noise 1.2, 120 of 3,383 clients, 100 rounds
    assert privacy.epsilon(1.2, 100, 1e-5, q=120 / 3383) == pytest.approx(2.0, abs=0.05)
    pld = privacy.epsilon(1.0, 15, 1e-3, q=20 / 90, accountant="pld")
    assert pld < privacy.epsilon(1.0, 15, 1e-3, q=20 / 90)  # PLD is the tighter accountant
    assert privacy.epsilon(0.0, 15, 1e-3, q=0.5) == math.inf


@pytest.mark.parametrize("z,rounds,delta", [(1.0, 1, 1e-5), (0.7, 1, 1e-3), (1.0, 10, 1e-4), (3.0, 50, 1e-6)])
def test_the_accountants_agree_with_the_analytic_gaussian_mechanism(z, rounds, delta):
    # Balle & Wang (2018): the exact ε of a Gaussian of mu = sqrt(rounds)/z; an independent closed form
    from scipy.stats import norm

    mu = math.sqrt(rounds) / z
    exact = privacy.gaussian_epsilon(mu, delta)
    assert norm.cdf(-exact / mu + mu / 2) - math.exp(exact) * norm.cdf(-exact / mu - mu / 2) == pytest.approx(
        delta, rel=1e-6)
    pld = privacy.epsilon(z, rounds, delta, sampling="none", accountant="pld")
    assert pld == pytest.approx(exact, abs=0.02)  # PLD is exact up to its discretisation
    assert privacy.epsilon(z, rounds, delta, sampling="none") >= exact  # RDP: an upper bound


def _rdp_poisson_gaussian(q, z, order):
    """RDP of one Poisson-sampled Gaussian round at an integer order (Mironov, Talwar & Zhang 2019:
    the binomial expansion, exact for integer orders), in logs for stability."""
    from scipy.special import gammaln, logsumexp

    k = np.arange(order + 1)
    log_terms = (gammaln(order + 1) - gammaln(k + 1) - gammaln(order - k + 1)
                 + (order - k) * np.log1p(-q) + k * np.log(q) + (k * k - k) / (2 * z * z))
    return float(logsumexp(log_terms)) / (order - 1)


@pytest.mark.parametrize("z,rounds,q,delta", [(1.0, 10, 0.25, 1e-4), (0.7, 10, 0.25, 1e-4), (1.0, 2, 0.25, 1e-4)])
def test_poisson_epsilon_against_an_independent_integer_order_rdp(z, rounds, q, delta):
    # the notebook's headline ε (z = 1, q = 1/4, 10 rounds: 5.78) from a closed form that shares no
    # code with dp_accounting; integer orders only, so it may be a little larger, never smaller
    by_hand = min(rounds * _rdp_poisson_gaussian(q, z, a) + math.log1p(-1 / a)
                  - (math.log(delta) + math.log(a)) / (a - 1) for a in range(2, 200))
    library = privacy.epsilon(z, rounds, delta, q=q)
    assert library <= by_hand + 1e-6 and by_hand <= 1.05 * library  # z = 1: 5.78 vs 5.81


def _rdp_epsilon_by_hand(sensitivity_squared, z, delta):
    """ε of a Gaussian of squared sensitivity S² and noise z, from its RDP alpha*S²/(2 z²) with the
    conversion of Canonne, Kamath & Steinke (2020), minimised over a fine grid of orders."""
    orders = np.concatenate([np.linspace(1.01, 20, 4000), np.linspace(20, 512, 4000)])
    rdp = orders * sensitivity_squared / (2 * z**2)
    eps = rdp + np.log1p(-1 / orders) - (math.log(delta) + np.log(orders)) / (orders - 1)
    return float(eps.min())


@pytest.mark.parametrize("rounds,per_tree,depths", [
    (10, None, [4]),            # one tree of 10 rounds: levels 1, 2, 4, 8 complete -> 4 nodes
    (10, 4, [3, 3, 2]),         # trees of 4, 4, 2 rounds (not 10 // 3 = 3 rounds each)
    (10, 3, [2, 2, 2, 1]),      # trees of 3, 3, 3, 1
    (2000, 500, [9, 9, 9, 9]),  # 500 = 0b111110100: 9 levels
    (7, 7, [3]),
])
def test_tree_epsilon_against_a_hand_computation(rounds, per_tree, depths):
    assert [size.bit_length() for size in privacy.tree_sizes(rounds, per_tree)] == depths
    assert sum(privacy.tree_sizes(rounds, per_tree)) == rounds  # no round left out
    z, delta = 2.0, 1e-5
    by_hand = _rdp_epsilon_by_hand(sum(depths), z, delta)
    assert privacy.tree_epsilon(z, rounds, delta, per_tree) == pytest.approx(by_hand, rel=0.01)
    # never below the exact ε of the same Gaussian (an RDP conversion is an upper bound)
    assert privacy.tree_epsilon(z, rounds, delta, per_tree) >= privacy.gaussian_epsilon(
        math.sqrt(sum(depths)) / z, delta)


def test_tree_schedule_refuses_impossible_trees():
    for rounds, per_tree in [(10, 0), (10, 11), (0, None)]:
        with pytest.raises(privacy.PrivacyInputError, match="rounds"):
            privacy.tree_epsilon(1.0, rounds, 1e-5, per_tree)


@pytest.mark.parametrize("kwargs,message", [
    (dict(delta=0.0), "δ must be in"),
    (dict(delta=1.5), "δ must be in"),
    (dict(noise_multiplier=-1.0), "noise multiplier"),
    (dict(q=1.5), "sampling rate"),
    (dict(sampling="sometimes"), "unknown sampling"),
    (dict(accountant="moments"), "unknown accountant"),
    (dict(sampling="fixed", population=10, clients_per_round=2, accountant="pld"), "no fixed-size"),
])
def test_accountant_inputs_out_of_range_get_clear_errors(kwargs, message):
    arguments = dict(noise_multiplier=1.0, rounds=10, delta=1e-5, q=0.1) | kwargs
    with pytest.raises(privacy.PrivacyInputError, match=message):
        privacy.epsilon(**arguments)


def test_psnr_roc_auc_interval_and_tpr_at_low_fpr():
    image = np.linspace(0, 1, 784).reshape(28, 28)
    assert privacy.psnr(image, image) == math.inf
    assert privacy.psnr(image + 0.1, image) == pytest.approx(20.0)
    fpr, tpr, auc = privacy.roc_auc([3, 4, 5], [0, 1, 2])
    assert auc == 1.0 and tpr[-1] == 1.0 and fpr[-1] == 1.0
    assert privacy.roc_auc([1, 2], [1, 2])[2] == 0.5
    rng = np.random.default_rng(0)
    members, others = rng.normal(0.5, 1, 64), rng.normal(0, 1, 40)
    low, high = privacy.auc_interval(members, others)
    assert low < privacy.roc_auc(members, others)[2] < high and high - low < 0.35
    # 2 of 5 members above every non-member: TPR 0.4 at FPR 0
    assert privacy.tpr_at_fpr([9, 8, 1, 0, 0], [2, 3, 4], 0.01) == pytest.approx(0.4)


def test_auc_bounds_from_the_privacy_profile_against_closed_forms():
    # pure ε-DP: the bound's area is e^ε / (1 + e^ε), derived in closed form
    for eps in (0.1, 1.0, 3.0):
        assert privacy.auc_upper_bound([eps], [0.0]) == pytest.approx(math.exp(eps) / (1 + math.exp(eps)), abs=1e-5)
    # Gaussian mechanism, no sampling: the whole profile gives back mu-GDP's Φ(mu/√2)
    for z, rounds in [(1.0, 10), (2.0, 4), (5.0, 1)]:
        eps, deltas = privacy.privacy_profile(z, rounds)
        bound = privacy.auc_upper_bound(eps, deltas)
        assert bound == pytest.approx(privacy.gdp_auc_bound(math.sqrt(rounds) / z), abs=0.003)
    assert privacy.auc_bound(math.inf, 1e-5) == 1.0
    assert 0.5 < privacy.auc_bound(1.0, 1e-5) < privacy.auc_bound(2.0, 1e-5) < 1.0


def test_the_profile_bound_holds_for_the_best_attack_on_sampled_rounds():
    # Poisson-sampled Gaussian, z = 1, q = 1/4, 10 rounds: the likelihood-ratio test is the most
    # powerful one; its AUC, by Monte Carlo, must stay below the bound (it would fail if δ(ε) were
    # taken for one direction only, or too small)
    eps, deltas = privacy.privacy_profile(1.0, 10, q=0.25)
    bound = privacy.auc_upper_bound(eps, deltas)
    rng, n, q = np.random.default_rng(0), 100_000, 0.25
    out = rng.normal(size=(n, 10))
    inside = rng.normal(size=(n, 10)) + (rng.random((n, 10)) < q)

    def llr(x):
        return np.log1p(q * np.expm1(x - 0.5)).sum(1)
    best = privacy.roc_auc(llr(inside)[:3000], llr(out)[:3000])[2]
    assert best - 0.02 <= bound < best + 0.05
    assert bound < privacy.auc_bound(privacy.epsilon(1.0, 10, 1e-4, q=0.25, accountant="pld"), 1e-4)


def test_audit_lower_bound_from_the_binomial_tail():
    from scipy.stats import binom

    # all of r guesses right: the tail p**r reaches 5 % at p = 0.05**(1/r)
    for r in (20, 100):
        p = 0.05 ** (1 / r)
        assert privacy.audit_epsilon(r, r) == pytest.approx(math.log(p / (1 - p)), abs=1e-6)
    eps = privacy.audit_epsilon(70, 100)
    assert binom.sf(69, 100, 1 / (1 + math.exp(-eps))) == pytest.approx(0.05, rel=1e-4)
    assert privacy.audit_epsilon(50, 100) == 0.0  # chance level: no evidence
    scores, included = [5, 4, 3, 2, 1, 0], [True, True, False, True, False, False]
    assert privacy.audit_guesses(scores, included, 2) == (4, 4)
    with pytest.raises(privacy.PrivacyInputError, match="guesses_each_side"):
        privacy.audit_guesses(scores, included, 4)
    # an ε-DP mechanism (randomised response on each canary's bit) is never audited above its ε
    rng, true_eps = np.random.default_rng(1), 1.0
    found = []
    for _ in range(200):
        bits = rng.random(1000) < 0.5
        keep = rng.random(1000) < math.exp(true_eps) / (1 + math.exp(true_eps))
        reported = np.where(keep, bits, ~bits) + rng.random(1000) * 0.1
        found.append(privacy.audit_epsilon(*privacy.audit_guesses(reported, bits, 100)))
    assert np.mean(np.array(found) > true_eps) <= 0.05 + 0.03 and np.median(found) > 0.3


def test_audit_at_delta_adds_the_approximate_dp_term():
    from scipy.stats import binom

    # (ε, δ): the tail plus 2·m·δ·max_i P[v − i ≤ Bin < v] / i, written out here as a loop
    v, r, m, delta = 170, 200, 1000, 1e-4
    eps = privacy.audit_epsilon(v, r, delta=delta, canaries=m)
    p = 1 / (1 + math.exp(-eps))
    term = max(sum(binom.pmf(v - j, r, p) for j in range(1, i + 1)) / i for i in range(1, v + 1))
    assert binom.sf(v - 1, r, p) + 2 * m * delta * term == pytest.approx(0.05, rel=1e-4)
    assert 0 < eps < privacy.audit_epsilon(v, r)  # δ > 0 can only weaken the evidence
    assert privacy.audit_epsilon(v, r, delta=0.0) == privacy.audit_epsilon(v, r)
    with pytest.raises(privacy.PrivacyInputError, match="canaries"):
        privacy.audit_epsilon(v, r, delta=delta)


def test_check_explains_and_raises_only_when_strict(monkeypatch, capsys):
    monkeypatch.setattr(runtime, "STRICT", False)
    runtime.check(True, "held")
    runtime.check(False, "loss falls", "the rate may be too high")  # explains, does not raise
    out = capsys.readouterr().out
    assert "✓ held" in out and "⚠ expected: loss falls" in out and "why: the rate may be too high" in out
    monkeypatch.setattr(runtime, "STRICT", True)
    with pytest.raises(runtime.CheckFailed, match="loss falls"):
        runtime.check(False, "loss falls", "the rate may be too high")


_DDP_PROBE = """
import numpy as np
import tensorflow_federated as tff

tff.backends.test.set_sync_test_cpp_execution_context()
process = tff.learning.ddp_secure_aggregator(0.5, 10).create(tff.TensorType(np.float32, [10]))
try:
    process.next(process.initialize(), [np.ones(10, np.float32)] * 3)
    print("RAN")
except Exception as error:
    print("FAILED", type(error).__module__, type(error).__name__)
"""


@pytest.mark.slow
def test_ddp_secure_aggregator_still_fails_on_the_test_runtime():
    # notebook 07 (step 5, "Under the hood") says ddp_secure_aggregator does not run on this TFF:
    # protobuf's DecodeError while TFF serialises the aggregator. A TFF that runs it fails this test,
    # and the sentence (and the notebook's NumPy stand-in) must change. In a subprocess: it switches
    # TFF's execution context.
    import os
    import signal
    import subprocess
    import sys
    import tempfile

    # output to a file, not a pipe: TFF's worker process outlives the probe and would hold a pipe
    # open; the probe runs in its own process group, ended (worker included) once it is done
    with tempfile.TemporaryFile("w+") as out:
        probe = subprocess.Popen([sys.executable, "-c", _DDP_PROBE], stdout=out, stderr=subprocess.STDOUT,
                                 text=True, start_new_session=True)
        try:
            probe.wait(timeout=900)
        finally:
            try:
                os.killpg(probe.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out.seek(0)
        text = out.read()
    assert "FAILED google.protobuf.message DecodeError" in text, text[-3000:]
