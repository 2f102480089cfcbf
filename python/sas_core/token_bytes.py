"""The bytes of every vocabulary entry of a tokenizer, for :class:`StepSegmenter`.

Supported: ``tiktoken.Encoding``, ``tokenizers.Tokenizer``, ``transformers`` tokenizers
(fast ones through their ``tokenizers`` backend, sentencepiece-backed slow ones through
their ``sp_model``) and ``sentencepiece.SentencePieceProcessor``. Special and added
tokens map to the bytes of their literal text.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

__all__ = ["tokenizer_token_bytes"]

_SP_SPACE = "\u2581"  # sentencepiece's "▁"
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@lru_cache(maxsize=1)
def _byte_level_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes-to-unicode map used by byte-level BPE vocabularies."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, codes)}


def _byte_level_bytes(token: str) -> bytes:
    table = _byte_level_decoder()
    try:
        return bytes(table[ch] for ch in token)
    except KeyError:  # not a byte-level string (e.g. an added token): literal text
        return token.encode("utf-8")


def _sentencepiece_bytes(piece: str) -> bytes:
    m = _BYTE_PIECE.fullmatch(piece)
    if m:
        return bytes([int(m.group(1), 16)])
    return piece.replace(_SP_SPACE, " ").encode("utf-8")


def _wordpiece_bytes(piece: str) -> bytes:
    return (piece[2:] if piece.startswith("##") else piece).encode("utf-8")


def _component_types(spec: Any) -> set[str]:
    """All ``type`` names in a tokenizer.json component (decoders nest in Sequences)."""
    found: set[str] = set()
    if isinstance(spec, dict):
        if isinstance(spec.get("type"), str):
            found.add(spec["type"])
        for v in spec.values():
            found |= _component_types(v)
    elif isinstance(spec, list):
        for v in spec:
            found |= _component_types(v)
    return found


def _tokenizers_bytes(tok: Any) -> list[bytes]:
    """``tokenizers.Tokenizer``: decode each vocabulary string by the model's convention."""
    spec = json.loads(tok.to_str())
    kinds = _component_types(spec.get("decoder")) | _component_types(spec.get("pre_tokenizer"))
    if "ByteLevel" in kinds:
        convert = _byte_level_bytes
    elif kinds & {"Metaspace", "ByteFallback", "Replace"}:
        convert = _sentencepiece_bytes
    elif "WordPiece" in kinds:
        convert = _wordpiece_bytes
    else:
        convert = str.encode

    vocab: dict[str, int] = tok.get_vocab(with_added_tokens=True)
    size = max(vocab.values(), default=-1) + 1
    out = [b""] * size
    for text, i in vocab.items():
        out[i] = convert(text)
    for i, added in tok.get_added_tokens_decoder().items():
        out[i] = added.content.encode("utf-8")
    return out


def _sp_processor_bytes(sp: Any, added: dict[int, Any] | None = None) -> list[bytes]:
    size = sp.get_piece_size()
    out = []
    for i in range(size):
        piece = sp.id_to_piece(i)
        if sp.is_control(i):
            out.append(piece.encode("utf-8"))
        else:
            out.append(_sentencepiece_bytes(piece))
    for i, tok in (added or {}).items():
        while len(out) <= i:
            out.append(b"")
        out[i] = getattr(tok, "content", str(tok)).encode("utf-8")
    return out


def _tiktoken_bytes(enc: Any) -> list[bytes]:
    out = []
    for i in range(enc.n_vocab):
        try:
            out.append(enc.decode_single_token_bytes(i))
        except KeyError:  # a gap in the id space
            out.append(b"")
    return out


def tokenizer_token_bytes(tok: Any) -> list[bytes]:
    """Bytes of each token id of ``tok``, index = id."""
    if hasattr(tok, "decode_single_token_bytes") and hasattr(tok, "n_vocab"):
        return _tiktoken_bytes(tok)
    if hasattr(tok, "get_added_tokens_decoder") and hasattr(tok, "to_str"):
        return _tokenizers_bytes(tok)
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        return _tokenizers_bytes(backend)
    sp = getattr(tok, "sp_model", None)
    if sp is not None:
        return _sp_processor_bytes(sp, getattr(tok, "added_tokens_decoder", None))
    if hasattr(tok, "id_to_piece") and hasattr(tok, "get_piece_size"):
        return _sp_processor_bytes(tok)
    raise TypeError(
        "tok: expected a transformers tokenizer, a tokenizers.Tokenizer, a tiktoken.Encoding "
        f"or a sentencepiece.SentencePieceProcessor, got {type(tok).__name__}"
    )
