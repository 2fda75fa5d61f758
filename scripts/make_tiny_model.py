"""Generate a tiny random Llama model (with a real BPE tokenizer) for the local vLLM engine.

Run it with the engine venv's python (it needs torch, transformers and tokenizers, which the
project venv deliberately lacks):

    .venv-engine/bin/python scripts/make_tiny_model.py .run/tiny-llama

The model is deterministic (same bytes on every run with the same library versions) so tests can
cache it and results stay comparable; it is random weights, so its text is random word pieces.
No model hub is needed. An existing complete model is left alone.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

CORPUS_DIR = Path("/usr/share/common-licenses")
VOCAB_SIZE = 2048
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>"]
# Files whose presence marks a finished model (the dir appears by an atomic rename: all or none).
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
# Two lines are enough for /v1/chat/completions to work; the model cannot follow it anyway.
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def corpus_texts() -> Iterator[str]:
    """Local licence texts give the tokenizer real English merges without any download.

    Sorted and de-duplicated (several names are symlinks) so the merges are reproducible.
    """
    if CORPUS_DIR.is_dir():
        seen: set[Path] = set()
        for path in sorted(CORPUS_DIR.iterdir()):
            real = path.resolve()
            if real in seen or not real.is_file():
                continue
            seen.add(real)
            yield real.read_text(encoding="utf-8", errors="replace")
        if seen:
            return
    yield from generated_texts()


def generated_texts(n_docs: int = 400, words_per_doc: int = 200) -> Iterator[str]:
    """Fallback for machines without /usr/share/common-licenses: seeded pseudo-English."""
    rng = random.Random(0)
    syllables = ["ka", "lo", "mi", "ne", "ta", "ri", "su", "ve", "do", "pa", "the", "and", "ing"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
    for _ in range(n_docs):
        yield " ".join(rng.choice(words) for _ in range(words_per_doc)) + ".\n"


def build_tokenizer():  # -> transformers.PreTrainedTokenizerFast (imported lazily)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_texts(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=2048,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer, out: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out, safe_serialization=True)


def is_complete(out: Path) -> bool:
    return all((out / name).is_file() for name in REQUIRED_FILES)


def make_tiny_model(out: Path) -> Path:
    """Build into a sibling temp dir and rename, so a crash never leaves a half model behind."""
    if is_complete(out):
        return out
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} exists but is not a complete model; remove it and retry")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tokenizer = build_tokenizer()
        tokenizer.save_pretrained(tmp)
        build_model(tokenizer, tmp)
        if out.exists():
            out.rmdir()  # empty (checked above)
        try:
            os.rename(tmp, out)
        except OSError:
            # Another process finished first; its model is identical.
            if not is_complete(out):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # keep logs of test runs readable
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write the model into")
    args = parser.parse_args(argv)
    existed = is_complete(args.out)
    out = make_tiny_model(args.out)
    print(f"{'kept existing' if existed else 'wrote'} tiny model at {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
