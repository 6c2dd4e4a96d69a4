"""Permutation-equivariant graph VAE for QM9 (one latent vector per node slot).

The encoder and decoder are stacks of the equivariant linear layers of Maron
et al., "Invariant and Equivariant Graph Networks" (ICLR 2019): the complete
bases of S_n-equivariant linear maps between pair tensors (order 2 -> 2, 15
basis elements), from pair to node tensors (2 -> 1, 5) and from node to pair
tensors (1 -> 2, 5), each mixed over channels like a 1x1 convolution and
followed by a nonlinearity. This is the architecture family of the graph VAE in
Hansen, Calissano & Feragen, "Interpreting Equivariant Representations"
(ICML 2024, Sec. 5.1): the latent code of a molecule is ``z`` of shape
``(n, d)`` (``n = 9`` slots, ``d = 1`` by default) and relabelling the atoms
permutes the rows of ``z``.

Encoder input: the pair tensor whose diagonal holds one-hot atom types
(empty slot included) plus a symmetry-breaking tie label, and whose
off-diagonal holds one-hot bond orders. Why the tie label: an equivariant
encoder must give graph-symmetric atoms (the four carbons of cyclobutane)
identical codes, and an equivariant decoder given identical codes must then
predict identical bonds for every pair among them, which cannot rebuild a ring.
The tie label (see ``backend.data.qm9.MolGraph.tiebreak``) numbers the atoms
within each class of symmetric atoms; it is an atom feature, so the network
stays exactly equivariant in its input, and two presentations of one molecule
still give codes on one S_n orbit.

Decoder: ``z`` -> node features -> pair tensor (1 -> 2) -> 2 -> 2 layers ->
heads for node existence (1 logit), atom type (8), edge existence (1) and bond
type (3, given an edge), read from the diagonal / symmetrized off-diagonal.

Loss: negative ELBO = reconstruction NLL + beta * KL(q(z|G) || N(0, I)), with
the closed-form Gaussian KL summed over all ``n * d`` latent entries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

N_ATOM_TYPES = 8  # C N O F N+ O- C- N-  (backend.data.qm9.ATOM_TYPES)
N_BOND_ORDERS = 3  # single double triple


@dataclass
class GraphVAEConfig:
    """Hyper-parameters of :class:`GraphVAE` (stored in the weights' sidecar)."""

    n_nodes: int = 9  # node budget (QM9: at most 9 heavy atoms)
    latent_dim: int = 1  # d: latent size per node; the paper's z is in R^n, d = 1
    hidden: int = 64  # channels of the pair tensors
    enc_layers: int = 4  # 2->2 layers in the encoder
    dec_layers: int = 4  # 2->2 layers in the decoder
    beta: float = 1.0  # KL weight in the loss (1.0 = the plain ELBO)

    def to_dict(self) -> dict:
        """Plain dict of the fields (for the JSON sidecar)."""
        return asdict(self)


# --------------------------------------------------------------------------- layers
class Equivariant2to2(nn.Module):
    """S_n-equivariant linear map between pair tensors, (B, n, n, C_in) -> (B, n, n, C_out).

    Implements the 15-element basis of Maron et al. (2019, Sec. 3 and App. A):
    the identity and transpose on the whole tensor; the diagonal, row means and
    column means broadcast along rows, along columns, or onto the diagonal; and
    the diagonal mean and total mean broadcast onto the diagonal or everywhere.
    Means (not sums) keep activations independent of ``n``. Grouping the basis
    terms by where they are broadcast makes the cost two full 1x1 convolutions
    plus O(n) work, instead of 15.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.full = nn.Linear(c_in, c_out)  # T_ij
        self.full_t = nn.Linear(c_in, c_out, bias=False)  # T_ji
        self.rows = nn.Linear(3 * c_in, c_out, bias=False)  # f(i) broadcast over j
        self.cols = nn.Linear(3 * c_in, c_out, bias=False)  # f(j) broadcast over i
        self.diag = nn.Linear(5 * c_in, c_out)  # onto the diagonal (own bias)
        self.glob = nn.Linear(2 * c_in, c_out, bias=False)  # everywhere

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        diag = torch.diagonal(t, dim1=1, dim2=2).transpose(1, 2)  # (B, n, C)
        row_mean = t.mean(2)  # (B, n, C): mean over j of T_ij
        col_mean = t.mean(1)  # (B, n, C): mean over i of T_ij
        diag_mean = diag.mean(1)  # (B, C)
        all_mean = t.mean((1, 2))  # (B, C)
        vec = torch.cat([diag, row_mean, col_mean], -1)  # (B, n, 3C)
        scal = torch.cat([diag_mean, all_mean], -1)  # (B, 2C)
        out = self.full(t) + self.full_t(t.transpose(1, 2))  # (B, n, n, C_out)
        out = out + self.rows(vec)[:, :, None, :] + self.cols(vec)[:, None, :, :]
        out = out + self.glob(scal)[:, None, None, :]
        on_diag = self.diag(torch.cat([vec, scal[:, None, :].expand(-1, vec.shape[1], -1)], -1))
        return out + torch.diag_embed(on_diag.transpose(1, 2), dim1=1, dim2=2)


class Equivariant2to1(nn.Module):
    """S_n-equivariant linear map, pair tensor (B, n, n, C_in) -> node tensor (B, n, C_out).

    Basis (Maron et al. 2019): diagonal, row mean, column mean (per node), and
    diagonal mean, total mean (broadcast): 5 elements.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.node = nn.Linear(3 * c_in, c_out)
        self.glob = nn.Linear(2 * c_in, c_out, bias=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        diag = torch.diagonal(t, dim1=1, dim2=2).transpose(1, 2)  # (B, n, C)
        vec = torch.cat([diag, t.mean(2), t.mean(1)], -1)  # (B, n, 3C)
        scal = torch.cat([diag.mean(1), t.mean((1, 2))], -1)  # (B, 2C)
        return self.node(vec) + self.glob(scal)[:, None, :]


class Equivariant1to2(nn.Module):
    """S_n-equivariant linear map, node tensor (B, n, C_in) -> pair tensor (B, n, n, C_out).

    Basis (Maron et al. 2019): x_i on the diagonal, mean onto the diagonal,
    x_i broadcast over j, x_j broadcast over i, mean everywhere: 5 elements.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.diag = nn.Linear(2 * c_in, c_out, bias=True)
        self.rows = nn.Linear(c_in, c_out)
        self.cols = nn.Linear(c_in, c_out, bias=False)
        self.glob = nn.Linear(c_in, c_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1)  # (B, C)
        out = self.rows(x)[:, :, None, :] + self.cols(x)[:, None, :, :]
        out = out + self.glob(mean)[:, None, None, :]
        on_diag = self.diag(torch.cat([x, mean[:, None, :].expand_as(x)], -1))  # (B, n, C_out)
        return out + torch.diag_embed(on_diag.transpose(1, 2), dim1=1, dim2=2)


# --------------------------------------------------------------------------- model
class GraphVAE(nn.Module):
    """Equivariant graph VAE; see the module docstring.

    Parameters
    ----------
    config : GraphVAEConfig

    Shapes (B molecules, n = ``config.n_nodes`` slots, d = ``config.latent_dim``):
    ``types`` (B, n) long in 0..8 (0 = empty), ``bonds`` (B, n, n) long in 0..3,
    ``tiebreak`` (B, n) long in 0..n-1; codes ``z`` (B, n, d).
    """

    def __init__(self, config: GraphVAEConfig):
        super().__init__()
        self.config = config
        c, h, d = config.n_nodes, config.hidden, config.latent_dim
        c_in = (N_ATOM_TYPES + 1) + c + (N_BOND_ORDERS + 1)
        self.enc = nn.ModuleList([Equivariant2to2(c_in, h)] +
                                 [Equivariant2to2(h, h) for _ in range(config.enc_layers - 1)])
        self.enc_out = Equivariant2to1(h, h)
        self.enc_head = nn.Sequential(nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 2 * d))
        self.dec_in = nn.Sequential(nn.Linear(d, h), nn.SiLU(), nn.Linear(h, h))
        self.dec_lift = Equivariant1to2(h, h)
        self.dec = nn.ModuleList([Equivariant2to2(h, h) for _ in range(config.dec_layers)])
        self.node_head = nn.Linear(h, 1 + N_ATOM_TYPES)  # existence, atom type
        self.edge_head = nn.Linear(h, 1 + N_BOND_ORDERS)  # edge existence, bond order

    # -- encoder
    def encode(self, types, bonds, tiebreak):
        """Posterior parameters ``(mu, logvar)``, each (B, n, d)."""
        n = self.config.n_nodes
        node = torch.cat([F.one_hot(types.long(), N_ATOM_TYPES + 1),
                          F.one_hot(tiebreak.long(), n)], -1).float()  # (B, n, 9 + n)
        t = torch.cat([
            torch.diag_embed(node.transpose(1, 2), dim1=1, dim2=2),  # (B, n, n, 9 + n)
            F.one_hot(bonds.long(), N_BOND_ORDERS + 1).float(),  # (B, n, n, 4)
        ], -1)
        for layer in self.enc:
            t = F.silu(layer(t))
        h = F.silu(self.enc_out(t))  # (B, n, h)
        mu, logvar = self.enc_head(h).chunk(2, -1)  # (B, n, d) each
        return mu, logvar.clamp(-12.0, 8.0)

    # -- decoder
    def decode_logits(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits for a batch of codes ``z`` (B, n, d).

        Returns a dict: ``exists`` (B, n), ``atom`` (B, n, 8), ``edge`` (B, n, n)
        and ``bond`` (B, n, n, 3); pair logits are symmetric.
        """
        t = self.dec_lift(F.silu(self.dec_in(z)))  # (B, n, n, h)
        for layer in self.dec:
            t = F.silu(layer(t))
        diag = torch.diagonal(t, dim1=1, dim2=2).transpose(1, 2)  # (B, n, h)
        node = self.node_head(diag)  # (B, n, 9)
        pair = self.edge_head(0.5 * (t + t.transpose(1, 2)))  # (B, n, n, 4)
        return {"exists": node[..., 0], "atom": node[..., 1:],
                "edge": pair[..., 0], "bond": pair[..., 1:]}

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Deterministic decode: ``(types (B, n), bonds (B, n, n))`` as long tensors.

        A slot exists where sigmoid(exists) > 0.5 and then takes the argmax
        atom type; a pair of existing slots is bonded where sigmoid(edge) > 0.5,
        with the argmax bond order. The diagonal of ``bonds`` is 0.
        """
        out = self.decode_logits(z)
        exists = out["exists"] > 0
        types = torch.where(exists, out["atom"].argmax(-1) + 1, 0)
        both = exists[:, :, None] & exists[:, None, :]
        eye = torch.eye(z.shape[1], dtype=torch.bool, device=z.device)
        bonded = (out["edge"] > 0) & both & ~eye
        bonds = torch.where(bonded, out["bond"].argmax(-1) + 1, 0)
        return types, bonds

    def forward(self, types, bonds, tiebreak, sample: bool = True):
        """Encode, sample ``z`` by the reparameterization trick, decode.

        Returns ``(logits, mu, logvar, z)``.
        """
        mu, logvar = self.encode(types, bonds, tiebreak)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
        return self.decode_logits(z), mu, logvar, z


def reconstruction_nll(logits: dict, types: torch.Tensor, bonds: torch.Tensor) -> dict:
    """Per-part negative log-likelihoods, each summed over a molecule and averaged over the batch.

    Parts: node existence (Bernoulli, every slot), atom type (categorical, on
    existing slots), edge existence (Bernoulli, pairs i < j of existing slots)
    and bond order (categorical, on bonded pairs).
    """
    exists = types > 0
    n = types.shape[1]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=types.device), 1)
    pairs = exists[:, :, None] & exists[:, None, :] & upper
    bonded = (bonds > 0) & pairs
    b = types.shape[0]
    nll_exists = F.binary_cross_entropy_with_logits(logits["exists"], exists.float(), reduction="sum")
    nll_atom = F.cross_entropy(logits["atom"][exists], (types[exists] - 1).long(), reduction="sum")
    nll_edge = F.binary_cross_entropy_with_logits(
        logits["edge"][pairs], bonded[pairs].float(), reduction="sum")
    nll_bond = F.cross_entropy(logits["bond"][bonded], (bonds[bonded] - 1).long(), reduction="sum")
    return {"exists": nll_exists / b, "atom": nll_atom / b, "edge": nll_edge / b, "bond": nll_bond / b}


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over all but the batch axis, averaged over B.

    Closed form: 0.5 * sum(mu^2 + sigma^2 - log sigma^2 - 1) (Kingma & Welling 2014, App. B).
    """
    kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)
    return kl.flatten(1).sum(1).mean()


def elbo_loss(model: GraphVAE, types, bonds, tiebreak, beta: float | None = None):
    """Negative (beta-)ELBO of a batch and its parts (floats, nats per molecule)."""
    logits, mu, logvar, _ = model(types, bonds, tiebreak, sample=True)
    parts = reconstruction_nll(logits, types, bonds)
    kl = gaussian_kl(mu, logvar)
    beta = model.config.beta if beta is None else beta
    recon = sum(parts.values())
    loss = recon + beta * kl
    logs = {k: float(v.detach()) for k, v in parts.items()}
    return loss, {**logs, "kl": float(kl.detach()), "recon": float(recon.detach())}
