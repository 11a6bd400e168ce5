"""The Linformer's one new ingredient: project the n keys and values down to k rows along the sequence.

    headᵢ = softmax( Q Wᵢᵠ (Eᵢ K Wᵢᴷ)ᵀ / √d ) · Fᵢ V Wᵢⱽ            (paper, eq. 7)

Eᵢ and Fᵢ are k×n matrices. This package stores each one transposed, as a (seq_len, k) tensor `proj_k` (E)
and `proj_v` (F), exactly as the reference implementation does, so its checkpoints load unchanged. An input of
length n < seq_len uses the first n rows.

Projection kinds — how the matrix is made (paper §4, "general projections"):
    learned  a trained parameter, initialised uniform in ±1/√k (the reference's choice)
    random   a fixed Gaussian matrix with entries N(0, 1/k), never trained (Johnson–Lindenstrauss)
    mean     average pooling over windows of seq_len/k positions, nothing to train
    conv     a trained kernel of width seq_len/k applied with stride seq_len/k: learned pooling

Sharing levels — which projections are one and the same matrix (paper §4, "parameter sharing"):
    none       every head has its own Eᵢ and Fᵢ
    headwise   one E and one F per layer, shared by its heads (the reference's default)
    kv         one matrix per layer, used for both keys and values (E = F)
    layerwise  one matrix for the whole stack (tied across layers by `Linformer`)
"""
import math

import torch
from einops import rearrange

KINDS = ("learned", "random", "mean", "conv")
SHARING = ("none", "headwise", "kv", "layerwise")
TRAINED = ("learned", "conv")   # kinds stored as parameters; the others are fixed buffers


def init_projection(kind, seq_len, k, heads=None):
    """The tensor stored for one projection: a (seq_len, k) matrix, or a conv kernel of width seq_len // k.

    With `heads` (sharing='none') there is a leading heads dimension: (heads, seq_len, k) or (heads, width).
    """
    lead = () if heads is None else (heads,)
    if kind == "learned":
        bound = 1 / math.sqrt(k)
        return torch.zeros(*lead, seq_len, k).uniform_(-bound, bound)   # (…, seq_len, k)
    if kind == "random":
        return torch.randn(*lead, seq_len, k) / math.sqrt(k)            # (…, seq_len, k)
    width = seq_len // k
    if kind == "mean":
        return pooling_matrix(torch.full((*lead, width), 1 / width), k)  # (…, seq_len, k)
    if kind == "conv":
        bound = 1 / math.sqrt(width)
        return torch.zeros(*lead, width).uniform_(-bound, bound)        # (…, width)
    raise ValueError(f"projection: got {kind!r}, expected one of {', '.join(map(repr, KINDS))}")


def pooling_matrix(kernel, k):
    """Windows of len(kernel) positions, each summarised into one of k rows with the same kernel.

    kernel (…, w) -> matrix (…, k·w, k) whose column j holds the kernel at rows j·w … j·w + w - 1.
    A strided convolution along the sequence is exactly this matrix product.
    """
    eye = torch.eye(k, dtype=kernel.dtype, device=kernel.device)             # (k, k)
    blocks = torch.einsum("...w,jc->...jwc", kernel, eye)                    # (…, k, w, k)
    return rearrange(blocks, "... j w c -> ... (j w) c")                     # (…, k·w, k)


def projection_matrix(kind, stored, n, k):
    """The projection for an input of length n: (n, k), or (heads, n, k) for per-head projections."""
    matrix = pooling_matrix(stored, k) if kind == "conv" else stored         # (…, seq_len, k)
    return matrix[..., :n, :]                                                # (…, n, k)
