"""The standard-library character corpus and its language-model windows."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
import torch

from lmech.core import LmechInputError, generator
from lmech.data.stdlib_text import MODULES, REPLACEMENT, VOCABULARY, clean, lm_batches, stdlib_corpus

CHARS = 20_000


def test_same_interpreter_same_corpus():
    a, b = stdlib_corpus(CHARS), stdlib_corpus(CHARS)
    assert torch.equal(a.train, b.train) and torch.equal(a.validation, b.validation)
    assert a.files == b.files and a.python == b.python and a.vocabulary == b.vocabulary
    assert a.root == sysconfig.get_paths()["stdlib"]
    assert all(f.split("/")[0].removesuffix(".py") in MODULES for f in a.files)
    assert not any("test" in f.split("/")[0] or "site-packages" in f for f in a.files)


def test_vocabulary_is_small_sorted_and_fixed():
    c = stdlib_corpus(CHARS)
    assert c.vocabulary == VOCABULARY == "".join(sorted(set(VOCABULARY)))
    assert c.vocab_size == 97 < 100  # newline, the replacement symbol, 95 printable ASCII characters
    for ids in (c.train, c.validation):
        assert ids.dtype == torch.int64 and int(ids.min()) >= 0 and int(ids.max()) < c.vocab_size


def test_corpus_is_the_cleaned_concatenation_split_at_a_fixed_position():
    """Oracle: re-read the listed files by hand; train + validation is exactly the first CHARS cleaned characters,
    train the first 90% and validation the rest (disjoint, contiguous, covering everything)."""
    c = stdlib_corpus(CHARS, validation=0.1)
    text = "".join(clean((Path(c.root) / f).read_text(encoding="utf-8", errors="replace")) for f in c.files)[:CHARS]
    assert c.train.numel() == 18_000 and c.validation.numel() == 2_000
    assert c.decode(c.train) == text[:18_000] and c.decode(c.validation) == text[18_000:]
    assert torch.equal(torch.cat([c.train, c.validation]), c.encode(text))


def test_encode_decode_round_trip_and_replacement():
    c = stdlib_corpus(CHARS)
    chunk = c.train[:5000]
    assert torch.equal(c.encode(c.decode(chunk)), chunk)
    raw = "caf\u00e9\tx = 1\r\n"
    assert c.decode(c.encode(raw)) == f"caf{REPLACEMENT}{REPLACEMENT}x = 1{REPLACEMENT}\n"


def test_reads_packages_and_records_provenance(tmp_path: Path):
    (tmp_path / "abc.py").write_text("x = '\u00e9'\n" * 600, encoding="utf-8")
    (tmp_path / "argparse").mkdir()
    (tmp_path / "argparse" / "__init__.py").write_text("y = 2\n" * 1000, encoding="utf-8")
    (tmp_path / "test_abc.py").write_text("never read\n" * 1000, encoding="utf-8")
    c = stdlib_corpus(5000, root=tmp_path)
    assert c.files == ("abc.py", "argparse/__init__.py")
    assert c.decode(c.train[:8]) == f"x = '{REPLACEMENT}'\n"
    assert "never" not in c.decode(torch.cat([c.train, c.validation]))


def test_clear_errors(tmp_path: Path):
    with pytest.raises(LmechInputError, match="stripped interpreter"):
        stdlib_corpus(CHARS, root=tmp_path)  # no sources at all
    with pytest.raises(LmechInputError, match="chars must be"):
        stdlib_corpus(10)
    with pytest.raises(LmechInputError, match="chars must be at most"):
        stdlib_corpus(10**9)
    with pytest.raises(LmechInputError, match="validation"):
        stdlib_corpus(CHARS, validation=1.5)


def test_windows_are_shifted_by_one():
    tokens = torch.arange(1000)
    x, y = lm_batches(tokens, 16, 8, generator(0))
    assert x.shape == y.shape == (8, 16) and x.dtype == torch.int64
    assert torch.equal(y, x + 1)  # on arange, the target is the next position
    assert torch.equal(x - x[:, :1], torch.arange(16).expand(8, 16))  # contiguous windows
    x2, y2 = lm_batches(tokens, 16, 8, generator(0))
    assert torch.equal(x, x2) and torch.equal(y, y2)  # deterministic given the generator
    c = stdlib_corpus(CHARS)
    x, y = lm_batches(c.train, 32, 4, generator(1))
    assert torch.equal(x[:, 1:], y[:, :-1])
    with pytest.raises(LmechInputError, match="context"):
        lm_batches(tokens, 1000, 8, generator(0))
    with pytest.raises(LmechInputError, match="batch"):
        lm_batches(tokens, 16, 0, generator(0))
