"""Post-processing of decoder outputs.

``molecule``: the valence-constrained decode of the QM9 graph VAE, which returns
the most probable valid molecule of a code (a mixed-integer linear programme
solved by HiGHS through :func:`scipy.optimize.milp`).
"""

from backend.decoding.molecule import (
    ATOM_CHARGES,
    ATOM_VALENCES,
    STATUS_FALLBACK,
    STATUS_OPTIMAL,
    STATUS_TIME_LIMIT,
    ConstrainedGraph,
    constrained_decode,
    constrained_decode_logits,
    constraint_violations,
    log_likelihood,
)

__all__ = [
    "ATOM_CHARGES",
    "ATOM_VALENCES",
    "STATUS_FALLBACK",
    "STATUS_OPTIMAL",
    "STATUS_TIME_LIMIT",
    "ConstrainedGraph",
    "constrained_decode",
    "constrained_decode_logits",
    "constraint_violations",
    "log_likelihood",
]
