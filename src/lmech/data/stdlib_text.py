"""A character-level text corpus read from the running interpreter's standard library: text the machine has.

The corpus is the source of a fixed, sorted list of long-lived top-level standard-library modules (``MODULES``:
each read from ``<stdlib>/<name>.py`` or, where the module is a package, ``<stdlib>/<name>/__init__.py``; test
suites, ``site-packages`` and everything else are never read), decoded as UTF-8 with universal newlines, every
character outside printable ASCII (0x20-0x7E) and newline -- tabs, form feeds, non-ASCII letters -- mapped to one
replacement symbol (``REPLACEMENT``, ASCII SUB), concatenated in that order and cut at ``chars`` characters. The
first ``1 - validation`` of it is the training text, the rest the validation text (a fixed position, so the two are
disjoint contiguous ranges). The vocabulary is fixed, not read from the text: newline, the replacement symbol and the
95 printable ASCII characters, sorted (97 tokens). Nothing is random: the same interpreter gives the same corpus;
``TextCorpus.files`` and ``python`` record where it came from. Character-level language modelling of source code
follows Karpathy's char-rnn / nanoGPT "shakespeare_char" set-up, with text every Python install ships.
"""

from __future__ import annotations

import platform
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lmech.core import LmechInputError

__all__ = ["MODULES", "REPLACEMENT", "VOCABULARY", "TextCorpus", "lm_batches", "stdlib_corpus"]

#: Top-level standard-library modules present from Python 3.8 to 3.13, sorted; read in this order.
MODULES = (
    "abc argparse ast base64 bisect calendar cmd code codecs colorsys configparser contextlib copy csv dataclasses "
    "datetime difflib dis doctest enum filecmp fnmatch fractions functools getopt gettext glob gzip heapq hmac "
    "inspect ipaddress keyword linecache locale mailbox mimetypes numbers operator optparse os pathlib pdb pickle "
    "platform pprint queue random reprlib sched secrets selectors shlex shutil socket statistics string subprocess "
    "tarfile tempfile textwrap threading timeit tokenize trace traceback types typing uuid warnings weakref zipfile"
).split()
REPLACEMENT = "\x1a"  # ASCII SUB ("substitute"): every character outside printable ASCII and newline
VOCABULARY = "".join(sorted("\n" + REPLACEMENT + "".join(map(chr, range(0x20, 0x7F)))))
MIN_CHARS = 4096
_OUTSIDE = re.compile(r"[^\n\x20-\x7e]")
_LOOKUP = np.full(128, VOCABULARY.index(REPLACEMENT), dtype=np.int64)  # ASCII code -> token id
_LOOKUP[[ord(c) for c in VOCABULARY]] = np.arange(len(VOCABULARY))


@dataclass(frozen=True)
class TextCorpus:
    """Token ids of a training and a validation text, the vocabulary (sorted characters) and provenance."""

    train: torch.Tensor  # (n_train,) int64 token ids
    validation: torch.Tensor  # (n_validation,) int64 token ids
    vocabulary: str
    files: tuple[str, ...]  # paths relative to the stdlib directory, in reading order
    python: str  # implementation and version of the interpreter whose stdlib was read
    root: str

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def encode(self, text: str) -> torch.Tensor:
        """Characters -> token ids; characters outside the vocabulary become the replacement symbol's id."""
        return encode(text)

    def decode(self, ids: torch.Tensor) -> str:
        """Token ids -> characters."""
        return "".join(self.vocabulary[i] for i in ids.tolist())


def clean(text: str) -> str:
    """Map every character outside printable ASCII and newline to ``REPLACEMENT``."""
    return _OUTSIDE.sub(REPLACEMENT, text)


def encode(text: str) -> torch.Tensor:
    codes = np.frombuffer(clean(text).encode("ascii"), dtype=np.uint8)
    return torch.from_numpy(_LOOKUP[codes].copy())


def _source(root: Path, name: str) -> Path | None:
    for rel in (f"{name}.py", f"{name}/__init__.py"):
        if (root / rel).is_file():
            return root / rel
    return None


def stdlib_corpus(chars: int = 1_000_000, validation: float = 0.1, root: str | Path | None = None) -> TextCorpus:
    """The first ``chars`` characters of the cleaned ``MODULES`` sources of the stdlib at ``root`` (default: the
    running interpreter's, ``sysconfig.get_paths()["stdlib"]``); the last ``validation`` fraction is held out."""
    if not isinstance(chars, int) or isinstance(chars, bool) or chars < MIN_CHARS:
        raise LmechInputError(f"chars must be an integer >= {MIN_CHARS}; got {chars!r}")
    if not (isinstance(validation, float | int) and 0.0 < validation < 1.0):
        raise LmechInputError(f"validation must be a fraction strictly between 0 and 1; got {validation!r}")
    base = Path(sysconfig.get_paths()["stdlib"] if root is None else root)
    pieces, files, total = [], [], 0
    for name in MODULES:
        path = _source(base, name)
        if path is None:
            continue
        try:
            text = clean(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        pieces.append(text)
        files.append(path.relative_to(base).as_posix())
        total += len(text)
        if total >= chars:
            break
    if total < chars:
        raise LmechInputError(
            f"the standard library at {str(base)!r} has only {total} characters of readable source in "
            f"{len(files)} of the {len(MODULES)} modules read (a stripped interpreter?); chars must be at most that "
            f"much; got chars={chars}. Use an interpreter with its .py sources, or pass root= a directory holding them"
        )
    ids = encode("".join(pieces)[:chars])
    cut = round(chars * (1.0 - validation))
    if cut < 2 or chars - cut < 2:
        raise LmechInputError(f"validation={validation} leaves fewer than 2 characters on one side of {chars}")
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return TextCorpus(ids[:cut].clone(), ids[cut:].clone(), VOCABULARY, tuple(files), python, str(base))


def lm_batches(
    tokens: torch.Tensor, context: int, batch: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` windows at uniformly random starts: x = tokens[s : s + context], y = tokens[s + 1 : s + context + 1]
    (next-character targets). Returns two (batch, context) int64 tensors."""
    if tokens.dim() != 1:
        raise LmechInputError(f"tokens must be a 1-D tensor of token ids; got shape {tuple(tokens.shape)}")
    for name, value in (("context", context), ("batch", batch)):
        if not isinstance(value, int) or value < 1:
            raise LmechInputError(f"{name} must be a positive integer; got {value!r}")
    if tokens.numel() < context + 1:
        raise LmechInputError(f"context must be below the number of tokens ({tokens.numel()}); got {context}")
    starts = torch.randint(0, tokens.numel() - context, (batch,), generator=gen)  # (batch,)
    idx = starts[:, None] + torch.arange(context)  # (batch, context)
    return tokens[idx], tokens[idx + 1]
