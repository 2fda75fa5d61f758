"""Prompts of a requested token count, without a tokenizer on the client side.

A prompt is a run of short, common English words, each of which byte-level BPE tokenizers (GPT-2,
Llama 3, Qwen, the tiny test model's) encode as one token of its own (" the", " of", ...). The
first few words spell a per-request number, so no two prompts share a first KV block and the
engine's prefix cache cannot turn a prefill into a cache hit: a benchmark must measure the
prefill the simulator models. How many tokens a word really costs, and how many the server adds
(a BOS token, a chat template), is measured once per run by :class:`TokenFit` probes; the actual
prompt token count of every request is read back from the server's usage record anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["NONCE_WORDS", "WORDS", "TokenFit", "prompt_text"]

# One token each in common BPE vocabularies; 16 of them make a base-16 digit.
WORDS = (
    " the",
    " of",
    " and",
    " to",
    " a",
    " in",
    " is",
    " it",
    " or",
    " that",
    " be",
    " for",
    " this",
    " by",
    " on",
    " with",
)
NONCE_WORDS = 6  # 16**6 = 16.7M distinct openings
FILLER = " the"


def prompt_text(words: int, nonce: int) -> str:
    """``words`` words: the nonce's base-16 digits as words, then filler."""
    words = max(1, int(words))
    digits = []
    n = nonce % (len(WORDS) ** NONCE_WORDS)
    for _ in range(min(words, NONCE_WORDS)):
        n, d = divmod(n, len(WORDS))
        digits.append(WORDS[d])
    return "".join(digits) + FILLER * (words - len(digits))


@dataclass(frozen=True)
class TokenFit:
    """prompt_tokens = tokens_per_word * words + overhead_tokens, as the server counts them."""

    tokens_per_word: float = 1.0
    overhead_tokens: float = 1.0  # a BOS token is the common case
    measured: bool = False

    def words_for(self, tokens: int) -> int:
        """Words whose prompt comes closest to ``tokens`` (at least one word)."""
        per = self.tokens_per_word if self.tokens_per_word > 0 else 1.0
        return max(1, round((tokens - self.overhead_tokens) / per))

    @staticmethod
    def from_probes(words_a: int, tokens_a: int, words_b: int, tokens_b: int) -> TokenFit:
        """Two probes of different lengths give the slope and the fixed part."""
        if words_b == words_a:
            raise ValueError("token probes need two different lengths")
        per = (tokens_b - tokens_a) / (words_b - words_a)
        if not math.isfinite(per) or per <= 0:
            return TokenFit()
        return TokenFit(per, max(0.0, tokens_a - per * words_a), measured=True)
