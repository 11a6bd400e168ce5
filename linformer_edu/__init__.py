"""linformer_edu: a tested, readable Linformer, and the helpers behind the course notebooks.

Drop-in for lucidrains' `linformer` 0.2.3: `from linformer_edu import LinformerLM` instead of
`from linformer import LinformerLM` — same arguments, same parameter names, same outputs.
"""
from .attention import FullSelfAttention, attend, attention_weights
from .linformer import (AttentionMaps, FeedForward, Linformer, LinformerLM, LinformerSelfAttention, PreNorm,
                        Residual, collect_attention_maps)
from .reversible import ReversibleSequence, SequentialSequence

__version__ = "0.1.0"

__all__ = [
    "AttentionMaps", "FeedForward", "FullSelfAttention", "Linformer", "LinformerLM", "LinformerSelfAttention",
    "PreNorm", "Residual", "ReversibleSequence", "SequentialSequence", "attend", "attention_weights",
    "collect_attention_maps",
]
