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

Options added for the v2 training (issue #10; all default to the shipped model,
so ``GraphVAEConfig(**old_sidecar["model_config"])`` loads the old weights):
``symmetric`` (tied layers for symmetric pair tensors, half the matmul cost),
``z_fourier`` / ``pair_fourier`` (sin/cos features of the codes and of code
differences in the decoder input) and ``decoder`` = ``"sorted_mlp"`` /
``"hybrid"`` (an MLP on the sorted codes, sorting being a cross-section of the
S_n action for d = 1, alone or added to the equivariant decoder). See
``models/results/graph_vae_ablation.md`` for what each did on QM9.
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
    symmetric: bool = False  # tied layers for symmetric pair tensors (half the cost; new in v2)
    z_fourier: int = 0  # decoder reads sin/cos(2^k z), k < z_fourier, besides z (0 = z only; new in v2)
    pair_fourier: int = 0  # decoder pair input also gets sin/cos(2^k |z_i - z_j|), k < pair_fourier (new in v2)
    decoder: str = "maron"  # maron: equivariant layers | sorted_mlp: MLP on the sorted codes | hybrid: sum (v2)
    mlp_hidden: int = 512  # width of the sorted_mlp decoder
    mlp_layers: int = 3  # hidden layers of the sorted_mlp decoder

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
        """Map ``t`` (B, n, n, C_in) to (B, n, n, C_out); equivariant: P t P^T -> P out P^T."""
        n = t.shape[1]
        diag = torch.diagonal(t, dim1=1, dim2=2).transpose(1, 2)  # (B, n, C)
        row_mean = t.mean(2)  # (B, n, C): mean over j of T_ij
        col_mean = t.mean(1)  # (B, n, C): mean over i of T_ij
        diag_mean = diag.mean(1)  # (B, C)
        all_mean = t.mean((1, 2))  # (B, C)
        vec = torch.cat([diag, row_mean, col_mean], -1)  # (B, n, 3C)
        scal = torch.cat([diag_mean, all_mean], -1)  # (B, 2C)
        c_out = self.full.out_features
        # one matmul for T_ij and T_ji: (T W_t^T)_ji = (T^T W_t^T)_ij since the map is per entry
        both = F.linear(t, torch.cat([self.full.weight, self.full_t.weight], 0))  # (B, n, n, 2 C_out)
        # the O(n) terms: rows + global + bias broadcast over j, cols over i
        row = self.rows(vec) + (self.glob(scal) + self.full.bias)[:, None, :]  # (B, n, C_out)
        col = self.cols(vec)  # (B, n, C_out)
        on_diag = self.diag(torch.cat([vec, scal[:, None, :].expand(-1, n, -1)], -1))  # (B, n, C_out)
        out = both[..., :c_out] + both[..., c_out:].transpose(1, 2)
        out = out + (row[:, :, None, :] + col[:, None, :, :])
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
        """Map ``t`` (B, n, n, C_in) to node features (B, n, C_out); equivariant: P t P^T -> P out."""
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
        """Map ``x`` (B, n, C_in) to a pair tensor (B, n, n, C_out); equivariant: P x -> P out P^T."""
        mean = x.mean(1)  # (B, C)
        out = self.rows(x)[:, :, None, :] + self.cols(x)[:, None, :, :]
        out = out + self.glob(mean)[:, None, None, :]
        on_diag = self.diag(torch.cat([x, mean[:, None, :].expand_as(x)], -1))  # (B, n, C_out)
        return out + torch.diag_embed(on_diag.transpose(1, 2), dim1=1, dim2=2)


class SymmetricEquivariant2to2(nn.Module):
    """S_n-equivariant linear map between *symmetric* pair tensors, (B, n, n, C_in) -> (B, n, n, C_out).

    For undirected graphs every pair tensor is symmetric (``T_ij = T_ji``),
    so the identity and transpose basis elements coincide, row and column
    means coincide, and tying "broadcast over rows" to "broadcast over
    columns" keeps the output symmetric. The remaining basis of Maron et al.
    (2019) restricted to symmetric tensors: ``W T_ij`` (one channel mix, half
    the cost of :class:`Equivariant2to2`), ``f(i) + f(j)`` of the diagonal and
    row mean, the diagonal and means onto the diagonal, and the diagonal and
    total means everywhere. Input symmetric => output symmetric.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.full = nn.Linear(c_in, c_out)  # T_ij (= T_ji)
        self.rows = nn.Linear(2 * c_in, c_out, bias=False)  # f(i) + f(j)
        self.diag = nn.Linear(4 * c_in, c_out)  # onto the diagonal (own bias)
        self.glob = nn.Linear(2 * c_in, c_out, bias=False)  # everywhere

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Map symmetric ``t`` (B, n, n, C_in) to symmetric (B, n, n, C_out)."""
        n = t.shape[1]
        diag = torch.diagonal(t, dim1=1, dim2=2).transpose(1, 2)  # (B, n, C)
        vec = torch.cat([diag, t.mean(2)], -1)  # (B, n, 2C)
        scal = torch.cat([diag.mean(1), t.mean((1, 2))], -1)  # (B, 2C)
        half = 0.5 * self.glob(scal)[:, None, :]  # split the global term over f(i) and f(j)
        row = self.rows(vec) + half  # (B, n, C_out)
        on_diag = self.diag(torch.cat([vec, scal[:, None, :].expand(-1, n, -1)], -1))  # (B, n, C_out)
        out = self.full(t) + (row[:, :, None, :] + row[:, None, :, :])
        return out + torch.diag_embed(on_diag.transpose(1, 2), dim1=1, dim2=2)


class SymmetricEquivariant1to2(nn.Module):
    """S_n-equivariant linear map, node tensor (B, n, C_in) -> symmetric pair tensor (B, n, n, C_out).

    Basis: x_i and the mean on the diagonal, ``f(x_i) + f(x_j)`` (tied rows and
    columns) and the mean everywhere.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.diag = nn.Linear(2 * c_in, c_out, bias=True)
        self.rows = nn.Linear(c_in, c_out)
        self.glob = nn.Linear(c_in, c_out, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``x`` (B, n, C_in) to a symmetric (B, n, n, C_out)."""
        mean = x.mean(1)  # (B, C)
        row = self.rows(x) + 0.5 * self.glob(mean)[:, None, :]
        out = row[:, :, None, :] + row[:, None, :, :]
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
        l22, l12 = ((SymmetricEquivariant2to2, SymmetricEquivariant1to2) if config.symmetric
                    else (Equivariant2to2, Equivariant1to2))
        self.enc = nn.ModuleList([l22(c_in, h)] + [l22(h, h) for _ in range(config.enc_layers - 1)])
        self.enc_out = Equivariant2to1(h, h)
        self.enc_head = nn.Sequential(nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 2 * d))
        if config.decoder not in ("maron", "sorted_mlp", "hybrid"):
            raise ValueError(f"unknown decoder {config.decoder!r} (maron, sorted_mlp, hybrid)")
        if config.z_fourier:
            self.register_buffer("z_freqs", 2.0 ** torch.arange(config.z_fourier, dtype=torch.float32),
                                 persistent=False)
        if config.decoder in ("sorted_mlp", "hybrid"):
            width, layers = config.mlp_hidden, []
            c_prev = c * d * (1 + 2 * config.z_fourier)
            for _ in range(config.mlp_layers):
                layers += [nn.Linear(c_prev, width), nn.SiLU()]
                c_prev = width
            layers.append(nn.Linear(c_prev, c * (1 + N_ATOM_TYPES) + c * c * (1 + N_BOND_ORDERS)))
            self.dec_mlp = nn.Sequential(*layers)
            if config.decoder == "sorted_mlp":
                return
        self.dec_in = nn.Sequential(nn.Linear(d * (1 + 2 * config.z_fourier), h), nn.SiLU(), nn.Linear(h, h))
        if config.pair_fourier:
            self.dec_pair = nn.Linear(d * (1 + 2 * config.pair_fourier), h, bias=False)
        self.dec_lift = l12(h, h)
        self.dec = nn.ModuleList([l22(h, h) for _ in range(config.dec_layers)])
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
    def z_features(self, z: torch.Tensor) -> torch.Tensor:
        """Per-node decoder input: ``z`` (B, n, d) -> (B, n, d (1 + 2 K)), K = ``config.z_fourier``.

        With K > 0, ``sin(2^k z)`` and ``cos(2^k z)`` for k < K are appended (Fourier
        features, as in NeRF's positional encoding), so the decoder can resolve fine
        differences between the scalars of one molecule; applied per node, so the
        decoder stays equivariant. K = 0 returns ``z`` (the shipped model).
        """
        if not self.config.z_fourier:
            return z
        arg = (z[..., None] * self.z_freqs).flatten(-2)  # (B, n, d K)
        return torch.cat([z, torch.sin(arg), torch.cos(arg)], -1)

    def decode_logits(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits for a batch of codes ``z`` (B, n, d).

        Returns a dict: ``exists`` (B, n), ``atom`` (B, n, 8), ``edge`` (B, n, n)
        and ``bond`` (B, n, n, 3); pair logits are symmetric.
        """
        if self.config.decoder == "sorted_mlp":
            return self._decode_sorted(z)
        t = self.dec_lift(F.silu(self.dec_in(self.z_features(z))))  # (B, n, n, h)
        if self.config.pair_fourier:  # distances between the codes of two slots, per latent channel
            dist = (z[:, :, None, :] - z[:, None, :, :]).abs()  # (B, n, n, d), symmetric
            arg = (dist[..., None] * 2.0 ** torch.arange(self.config.pair_fourier, dtype=z.dtype,
                                                         device=z.device)).flatten(-2)
            t = t + self.dec_pair(torch.cat([dist, torch.sin(arg), torch.cos(arg)], -1))
        for layer in self.dec:
            t = F.silu(layer(t))
        diag = torch.diagonal(t, dim1=1, dim2=2).transpose(1, 2)  # (B, n, h)
        node = self.node_head(diag)  # (B, n, 9)
        pair = self.edge_head(t if self.config.symmetric else 0.5 * (t + t.transpose(1, 2)))  # (B, n, n, 4)
        out = {"exists": node[..., 0], "atom": node[..., 1:], "edge": pair[..., 0], "bond": pair[..., 1:]}
        if self.config.decoder == "hybrid":  # equivariant layers + the sorted-codes MLP, logits summed
            extra = self._decode_sorted(z)
            return {k: v + extra[k] for k, v in out.items()}
        return out

    def _decode_sorted(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """``sorted_mlp`` decoder: sort the slots by their first latent channel (a cross-section of
        the S_n action), decode the sorted codes with an MLP into a graph in sorted order, and
        put every slot back where it came from. Equivariant: relabelling the slots of ``z`` only
        permutes the sort, so the outputs are permuted alike (exactly, unless two codes tie; slots
        with tied codes, such as the empty slots of a posterior mean, may swap their outputs, which
        gives an isomorphic graph). ``z`` (B, n, d) -> the dict of :meth:`decode_logits`.
        """
        b, n, _ = z.shape
        order = z[..., 0].argsort(dim=1, stable=True)  # (B, n): sorted position -> slot
        zs = torch.gather(z, 1, order[..., None].expand_as(z))  # (B, n, d), differentiable in z
        out = self.dec_mlp(self.z_features(zs).flatten(1))  # (B, n * 9 + n * n * 4)
        node_s = out[:, :n * (1 + N_ATOM_TYPES)].view(b, n, 1 + N_ATOM_TYPES)
        pair_s = out[:, n * (1 + N_ATOM_TYPES):].view(b, n, n, 1 + N_BOND_ORDERS)
        pair_s = 0.5 * (pair_s + pair_s.transpose(1, 2))
        rank = order.argsort(dim=1)  # (B, n): slot -> sorted position
        bidx = torch.arange(b, device=z.device)
        node = node_s[bidx[:, None], rank]  # (B, n, 9)
        pair = pair_s[bidx[:, None, None], rank[:, :, None], rank[:, None, :]]  # (B, n, n, 4)
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


def reconstruction_nll(logits: dict, types: torch.Tensor, bonds: torch.Tensor,
                       edge_pos_weight: float = 1.0) -> dict:
    """Per-part negative log-likelihoods, each summed over a molecule and averaged over the batch.

    Parameters
    ----------
    logits : dict from :meth:`GraphVAE.decode_logits` (shapes there).
    types : (B, n) long, 0 = empty slot; bonds : (B, n, n) long, 0 = no bond.
    edge_pos_weight : weight of the bonded pairs' term in the edge-existence
        Bernoulli NLL (class weighting for the rarer positive pairs; 1.0 = the
        plain likelihood, as in the shipped model).

    Parts: node existence (Bernoulli, every slot), atom type (categorical, on
    existing slots), edge existence (Bernoulli, pairs i < j of existing slots)
    and bond order (categorical, on bonded pairs). Computed with dense masks
    (no boolean indexing), so the cost does not depend on the batch content.
    """
    exists = types > 0
    n = types.shape[1]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=types.device), 1)
    dtype = logits["edge"].dtype
    pairs = (exists[:, :, None] & exists[:, None, :] & upper).to(dtype)
    bonded = (bonds > 0).to(dtype) * pairs
    ex = exists.to(logits["exists"].dtype)
    b = types.shape[0]
    nll_exists = F.binary_cross_entropy_with_logits(logits["exists"], ex, reduction="sum")
    atom_nll = F.cross_entropy(logits["atom"].transpose(1, 2), (types - 1).clamp(min=0),
                               reduction="none")  # (B, n)
    nll_atom = (atom_nll * ex).sum()
    edge_nll = F.binary_cross_entropy_with_logits(logits["edge"], bonded, reduction="none")  # (B, n, n)
    weight = pairs + (edge_pos_weight - 1.0) * bonded if edge_pos_weight != 1.0 else pairs
    nll_edge = (edge_nll * weight).sum()
    bond_nll = F.cross_entropy(logits["bond"].permute(0, 3, 1, 2), (bonds - 1).clamp(min=0),
                               reduction="none")  # (B, n, n)
    nll_bond = (bond_nll * bonded).sum()
    return {"exists": nll_exists / b, "atom": nll_atom / b, "edge": nll_edge / b, "bond": nll_bond / b}


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over all but the batch axis, averaged over B.

    ``mu``, ``logvar``: (B, n, d). Returns a scalar tensor (nats per molecule).
    Closed form: 0.5 * sum(mu^2 + sigma^2 - log sigma^2 - 1) (Kingma & Welling 2014, App. B).
    """
    kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0)
    return kl.flatten(1).sum(1).mean()


def elbo_loss(model: GraphVAE, types, bonds, tiebreak, beta: float | None = None,
              edge_pos_weight: float = 1.0):
    """Negative (beta-)ELBO of a batch and its parts.

    ``types`` (B, n), ``bonds`` (B, n, n), ``tiebreak`` (B, n) long tensors;
    ``beta`` defaults to ``model.config.beta``; ``edge_pos_weight`` as in
    :func:`reconstruction_nll`. Returns ``(loss, logs)``: the scalar loss
    tensor (nats per molecule) and a dict of floats (the parts, ``kl`` and
    ``recon``).
    """
    logits, mu, logvar, _ = model(types, bonds, tiebreak, sample=True)
    parts = reconstruction_nll(logits, types, bonds, edge_pos_weight=edge_pos_weight)
    kl = gaussian_kl(mu, logvar)
    beta = model.config.beta if beta is None else beta
    recon = sum(parts.values())
    loss = recon + beta * kl
    logs = {k: float(v.detach()) for k, v in parts.items()}
    return loss, {**logs, "kl": float(kl.detach()), "recon": float(recon.detach())}
