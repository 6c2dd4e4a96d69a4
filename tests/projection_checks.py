"""Checks every invariant projection must pass, chosen by its tags (cf. sklearn's
``_yield_all_checks``). Each check returns the measured error so failures print numbers."""

from __future__ import annotations

import itertools

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from backend.groups import LatentCodes

TOL = 1e-5


def _codes(action, rng, b=32):
    return LatentCodes(rng.normal(size=(b,) + action.code_shape).astype(np.float32), action)


def check_not_fitted_raises(proj, action, rng):
    try:
        clone(proj).transform(_codes(action, rng, 2))
    except NotFittedError:
        return 0.0
    raise AssertionError("transform before fit must raise NotFittedError")


def check_invariance(proj, action, rng):
    codes = _codes(action, rng)
    p = clone(proj).fit(codes)
    base = p.transform(codes)
    err = 0.0
    for g in action.testing_elements(rng):
        err = max(err, float(np.abs(p.transform(codes.act(g)) - base).max()))
    per_sample = action.random_element(rng, len(codes))  # a different element per code
    err = max(err, float(np.abs(p.transform(codes.act(per_sample)) - base).max()))
    assert err <= TOL, f"invariance error {err:.2e}"
    return err


def check_cross_section(proj, action, rng):
    codes = _codes(action, rng)
    p = clone(proj).fit(codes)
    sec = p.section(codes)
    # on the input's orbit: the quotient distance to the input is 0
    dist = float(action.quotient_distance(codes.values, sec.values).max())
    # a section: the same point for every element of an orbit, equal to transform
    g = action.random_element(rng, len(codes))
    drift = float(np.abs(p.section(codes.act(g)).values - sec.values).max())
    flat = float(np.abs(sec.flat() - p.transform(codes)).max())
    err = max(dist, drift, flat)
    assert err <= TOL, f"cross-section errors: orbit {dist:.2e}, drift {drift:.2e}, transform {flat:.2e}"
    return err


def check_isometry(proj, action, rng, n_pairs=200):
    z1, z2 = _codes(action, rng, n_pairs), _codes(action, rng, n_pairs)
    p = clone(proj).fit(z1)
    lhs = np.linalg.norm(p.transform(z1) - p.transform(z2), axis=1)
    rhs = action.quotient_distance(z1.values, z2.values)
    err = float(np.abs(lhs - rhs).max())
    assert err <= 1e-4, f"isometry error {err:.2e} (max over {n_pairs} pairs)"
    return err


def check_isometry_brute_force(proj, action, rng, n_pairs=20):
    """Against min over all n! permutations (only for small n)."""
    z1, z2 = _codes(action, rng, n_pairs), _codes(action, rng, n_pairs)
    p = clone(proj).fit(z1)
    perms = np.array(list(itertools.permutations(range(action.n))))
    err = 0.0
    for b in range(n_pairs):
        orbit = action.orbit(z2.values[b], perms)  # (n!, n, d)
        brute = np.sqrt(((orbit - z1.values[b]) ** 2).reshape(len(perms), -1).sum(1)).min()
        s = np.linalg.norm(p.transform(z1[b]) - p.transform(z2[b]))
        err = max(err, abs(float(s) - float(brute)))
    assert err <= 1e-4, f"brute-force isometry error {err:.2e}"
    return err


def check_lossless(proj, action, rng):
    """Pairs on different orbits (known quotient distance > 0) stay apart."""
    z1 = _codes(action, rng)
    z2 = LatentCodes(z1.values + 0.05 * rng.normal(size=z1.values.shape).astype(np.float32), action)
    z2 = z2.act(action.random_element(rng, len(z2)))
    qd = action.quotient_distance(z1.values, z2.values)
    p = clone(proj).fit(z1)
    sd = np.linalg.norm(p.transform(z1) - p.transform(z2), axis=1)
    ratio = float((sd / qd).min())
    assert (qd > 1e-3).all() and ratio > 1e-3, f"min ||s1 - s2|| / d = {ratio:.2e}"
    return ratio


def check_transform_pure(proj, action, rng):
    codes = _codes(action, rng)
    before = codes.values.copy()
    p = clone(proj).fit(codes)
    a, b = p.transform(codes), p.transform(codes)
    assert np.array_equal(codes.values, before) and np.array_equal(a, b)
    return 0.0


def check_sample_order_and_subset(proj, action, rng):
    codes = _codes(action, rng)
    p = clone(proj).fit(codes)
    full = p.transform(codes)
    order = rng.permutation(len(codes))
    err = float(np.abs(p.transform(codes[order]) - full[order]).max())
    err = max(err, float(np.abs(p.transform(codes[order[:5]]) - full[order[:5]]).max()))
    assert err == 0.0, err
    return err


def check_fit_idempotent_and_seeded(proj, action, rng):
    codes = _codes(action, rng)
    a = clone(proj).fit(codes).transform(codes)
    b = clone(proj).fit(codes).fit(codes).transform(codes)
    assert np.array_equal(a, b)
    return 0.0


def check_output_shape_and_names(proj, action, rng):
    """(B, k) float32 output, k as declared by the projection, one feature name per column."""
    codes = _codes(action, rng, 7)
    p = clone(proj).fit(codes)
    out = p.transform(codes)
    k = p._n_out(action)
    assert out.shape == (7, k) and out.dtype == np.float32, (out.shape, out.dtype, k)
    assert len(p.get_feature_names_out()) == k and np.isfinite(out).all()
    return 0.0


def check_seed_matters(proj, action, rng):
    """Random templates: the same seed gives the same output, another seed a different one."""
    codes = _codes(action, rng)
    seed = proj.get_params()["seed"]
    a = clone(proj).fit(codes).transform(codes)
    b = clone(proj).set_params(seed=seed).fit(codes).transform(codes)
    c = clone(proj).set_params(seed=seed + 1).fit(codes).transform(codes)
    diff = float(np.abs(a - c).max())
    assert np.array_equal(a, b) and diff > 1e-3, f"seed {seed} vs {seed + 1}: max difference {diff:.2e}"
    return diff


def checks_for(tags, has_section: bool, *, random_templates: bool = False):
    """The checks that apply, by tag (``random_templates``: the projection draws seeded templates)."""
    out = [check_not_fitted_raises, check_transform_pure, check_sample_order_and_subset,
           check_fit_idempotent_and_seeded, check_output_shape_and_names]
    if random_templates:
        out.append(check_seed_matters)
    if tags.invariant:
        out.append(check_invariance)
    if tags.cross_section and has_section:
        out.append(check_cross_section)
    if tags.isometric:
        out += [check_isometry, check_isometry_brute_force]
    if tags.lossless:
        out.append(check_lossless)
    return out
