"""Hugging Face folders of BERT sentence encoders, read as data: a zip of the folder becomes a text.TextSample.

A folder holds config.json, model.safetensors and tokenizer.json, and, from sentence-transformers, modules.json,
1_Pooling/config.json and sentence_bert_config.json. Nothing from it runs: the config is JSON checked field by field
(types, ranges, allowed values), the weights are safetensors (plain tensors, never pickle), the tokenizer is read by
Rust's `tokenizers` (data, no code); `auto_map` / `trust_remote_code` are refused, and transformers is never called.
Accepted: BERT encoders (model_type "bert"; GELU; absolute positions; mean pooling; a tokenizer that pads with id 0),
of any size within LIMITS; their encoder is slimcore.text.MiniLM built to the config's sizes.

Two steps, so the first can run in a confined reading process (slimcore.sandbox) and hand back plain data:
- read_folder(data, limit) -> (description, tensors): the zip checked before anything is extracted, every file read
  and checked; the description is JSON-able (see `read_folder`), the tensors are float32, named as MiniLM's.
- encoder(doc, tensors) and sample(doc, tensors, name, card_extra) -> text.TextSample, in the process that keeps the
  model: the description and tensors are checked again (they came from another process), then the encoder is built
  and the project's sentence set is tokenized with the folder's own tokenizer.
"""
from __future__ import annotations

import io
import json
import math
import re
import struct
import unicodedata
import zipfile
from pathlib import PurePosixPath
from typing import Any

import torch
from torch import nn

from . import text as T

KIND = "hf-encoder"
FORMAT = "Hugging Face folder"
MAX_ENTRIES = 2000             # entries in the zip (a model folder has a few dozen)
SMALL = 4 * 2**20              # config.json, modules.json, pooling and sentence-transformers configs, README.md:
                               # at most
MAX_HEADER = 100 * 2**20       # a safetensors header (JSON) at most (safetensors' own limit)
SHOWN = 3                      # names listed in a refusal

# Sizes a config may declare (BERT-large is 1024 hidden, 24 layers, 16 heads, FFN 4096): checked before any allocation.
LIMITS = {"vocab_size": (2, 1_000_000), "hidden_size": (1, 4096), "num_hidden_layers": (1, 48),
          "num_attention_heads": (1, 128), "intermediate_size": (1, 32768), "max_position_embeddings": (2, 16384),
          "type_vocab_size": (1, 64)}
DEFAULTS = {"type_vocab_size": 2, "layer_norm_eps": 1e-12,
            "hidden_act": "gelu"}   # BertConfig's, when a field is absent
ARCHITECTURES = ("BertModel", "BertForMaskedLM", "BertForPreTraining", "BertForSequenceClassification",
                 "BertForTokenClassification", "BertForNextSentencePrediction", "BertForMultipleChoice",
                 "BertForQuestionAnswering")   # every one is the BERT encoder plus a head; the head is not read
ROBERTA = ("roberta", "xlm-roberta", "camembert")
HEADS = ("pooler.", "cls.", "classifier.", "qa_outputs.")   # tensors of a head or pooler on top of the encoder: dropped
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
ST = "sentence_transformers.models."
POOLING_MODES = ("pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens",
                 "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")


class FolderError(ValueError):
    """A model folder that cannot be used, with a one-line message fit to show a person."""


# ---------------------------------------------------------------------------------------------------------- the zip

def _safe(name: str) -> bool:
    """A relative path inside the folder: no absolute path, drive or `..`."""
    n = name.replace("\\", "/")
    parts = PurePosixPath(n).parts
    return not (n.startswith("/") or re.match(r"^[A-Za-z]:", n) or ".." in parts or "\x00" in n)


def _entries(data: bytes, limit: int, need: tuple[str, ...] = ("model.safetensors", "tokenizer.json")
             ) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo], str]:
    """The zip, its files by name, and the folder prefix ("" or one folder deep) where config.json lies."""
    if not isinstance(data, (bytes, bytearray)) or not zipfile.is_zipfile(io.BytesIO(data)):
        raise FolderError("this is not a zip archive: upload a zip of the model folder (config.json, "
                          "model.safetensors, tokenizer.json)")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise FolderError(f"the zip archive cannot be read ({type(e).__name__})") from None
    if len(infos) > MAX_ENTRIES:
        raise FolderError(f"the zip holds {len(infos):,} entries; a model folder has at most {MAX_ENTRIES:,}")
    files: dict[str, zipfile.ZipInfo] = {}
    for i in infos:
        if not _safe(i.filename):
            raise FolderError(f"the zip holds a path outside its folder ({i.filename[:80]!r}): refused")
        if i.is_dir() or i.filename.startswith("__MACOSX/"):
            continue
        if i.filename in files:
            raise FolderError(f"the zip holds {i.filename[:80]!r} twice")
        files[i.filename] = i
    if "config.json" in files:
        prefix = ""
    else:
        tops = sorted({n.split("/")[0] for n in files if n.count("/") == 1 and n.endswith("/config.json")})
        if len(tops) > 1:
            raise FolderError(f"the zip holds several model folders ({', '.join(tops[:SHOWN])}): zip one")
        if not tops:
            raise FolderError("the zip has no config.json at its top or in one folder: zip the model folder "
                              "(config.json, model.safetensors, tokenizer.json)")
        prefix = tops[0] + "/"
    for name in need:
        if prefix + name not in files:
            extra = " (a pytorch_model.bin is not read: pickle can run code)" if name == "model.safetensors" \
                and prefix + "pytorch_model.bin" in files else ""
            raise FolderError(f"the folder has no {name}{extra}; it needs config.json, model.safetensors and "
                              "tokenizer.json")
    return zf, files, prefix


class _Reader:
    """Reads the few files the folder needs, each within its own cap and all within `limit` bytes in total."""

    def __init__(self, zf: zipfile.ZipFile, files: dict[str, zipfile.ZipInfo], prefix: str, limit: int) -> None:
        self.zf, self.files, self.prefix, self.left = zf, files, prefix, limit
        self.limit = limit

    def has(self, name: str) -> bool:
        return self.prefix + name in self.files

    def read(self, name: str, cap: int | None = None) -> bytes:
        info = self.files[self.prefix + name]
        if info.flag_bits & 0x1:
            raise FolderError(f"{name} is encrypted in the zip: zip the folder without a password")
        if cap is not None and info.file_size > cap:
            raise FolderError(f"{name} expands to {info.file_size / 10**6:,.1f} MB; at most {cap / 10**6:,.1f} MB "
                              "is read for it: refused before extracting")
        if info.file_size > self.left:
            raise FolderError(f"{name} expands to {info.file_size / 10**6:,.1f} MB; the files read from the folder "
                              f"may hold {self.limit / 10**6:,.1f} MB in all: refused before extracting")
        out = bytearray()
        try:
            with self.zf.open(info) as f:
                while chunk := f.read(min(2**20, info.file_size + 1 - len(out))):
                    out += chunk
                    if len(out) > info.file_size:
                        raise FolderError(f"{name} expands beyond the size the zip declares: refused")
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError, ValueError) as e:
            raise FolderError(f"{name} cannot be extracted from the zip ({type(e).__name__})") from None
        self.left -= len(out)
        return bytes(out)

    def json(self, name: str, cap: int = SMALL) -> Any:
        try:
            return json.loads(self.read(name, cap).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            if isinstance(e, FolderError):
                raise
            raise FolderError(f"{name} is not valid JSON ({type(e).__name__})") from None


# ---------------------------------------------------------------------------------------------------------- config

def _int(cfg: dict[str, Any], key: str) -> int:
    v = cfg.get(key, DEFAULTS.get(key))
    lo, hi = LIMITS[key]
    if type(v) is not int:
        raise FolderError(f"config.json: {key} must be a whole number, got {str(v)[:40]!r}")
    if not lo <= v <= hi:
        raise FolderError(f"config.json: {key} = {v:,} is outside {lo:,}..{hi:,}, the sizes accepted")
    return v


def check_config(cfg: Any) -> dict[str, Any]:
    """The fields of a BERT config.json the encoder uses, each checked (type, range, allowed value): a new dict.
    Refuses remote code, other model types and what the encoder does not compute (another activation, relative
    positions, a decoder)."""
    if not isinstance(cfg, dict):
        raise FolderError("config.json must hold a JSON object")
    if "auto_map" in cfg or "trust_remote_code" in cfg:
        raise FolderError("config.json asks for the folder's own Python code (auto_map / trust_remote_code): "
                          "refused, remote code never runs here")
    mt = cfg.get("model_type")
    if not isinstance(mt, str):
        raise FolderError("config.json has no model_type; accepted: bert")
    archs = cfg.get("architectures")
    archs = [] if archs is None else archs
    if not (isinstance(archs, list) and all(isinstance(a, str) for a in archs)):
        raise FolderError("config.json: architectures must be a list of names")
    if mt in ROBERTA:
        raise FolderError(f"model_type {mt!r} is not supported: RoBERTa-family encoders ({', '.join(ROBERTA)}) pad "
                          "with id 1 and count positions from it; accepted: bert")
    if mt != "bert":
        raise FolderError(f"model_type {mt[:40]!r} is not a BERT encoder; accepted: bert")
    other = [a for a in archs if a not in ARCHITECTURES]
    if other:
        raise FolderError(f"architecture {other[0][:60]!r} is not a BERT encoder; accepted: {', '.join(ARCHITECTURES)}")
    out = {k: _int(cfg, k) for k in LIMITS}
    if out["hidden_size"] % out["num_attention_heads"]:
        raise FolderError(f"config.json: hidden_size {out['hidden_size']} is not a multiple of num_attention_heads "
                          f"{out['num_attention_heads']}")
    eps = cfg.get("layer_norm_eps", DEFAULTS["layer_norm_eps"])
    if type(eps) not in (int, float) or not (math.isfinite(eps) and 0 < eps <= 1e-2):
        raise FolderError(f"config.json: layer_norm_eps must be a number in (0, 0.01], got {str(eps)[:40]!r}")
    act = cfg.get("hidden_act", DEFAULTS["hidden_act"])
    if act != "gelu":
        raise FolderError(f"config.json: hidden_act {str(act)[:40]!r} is not supported; accepted: gelu (exact, "
                          "as BERT)")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise FolderError(f"config.json: position_embedding_type {str(cfg['position_embedding_type'])[:40]!r} is "
                          "not supported; accepted: absolute")
    for flag in ("is_decoder", "add_cross_attention"):
        if cfg.get(flag, False) is not False:
            raise FolderError(f"config.json: {flag} must be false: a sentence encoder is not a decoder")
    pad = cfg.get("pad_token_id", T.PAD_ID)
    if pad is not None and pad != T.PAD_ID:
        raise FolderError(f"config.json: pad_token_id {str(pad)[:20]} is not supported; the encoder pads with id "
                          f"{T.PAD_ID} (BERT's [PAD])")
    return {**out, "layer_norm_eps": float(eps), "hidden_act": "gelu", "model_type": "bert",
            "architectures": list(archs)}


def expected_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every tensor the encoder of a (checked) config needs, by its name in text.MiniLM, with its shape."""
    V, H, P = config["vocab_size"], config["hidden_size"], config["max_position_embeddings"]
    Im, Tv = config["intermediate_size"], config["type_vocab_size"]
    out = {"embeddings.word_embeddings.weight": (V, H), "embeddings.position_embeddings.weight": (P, H),
           "embeddings.token_type_embeddings.weight": (Tv, H),
           "embeddings.LayerNorm.weight": (H,), "embeddings.LayerNorm.bias": (H,)}
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for m in ("query", "key", "value"):
            out |= {p + f"attention.self.{m}.weight": (H, H), p + f"attention.self.{m}.bias": (H,)}
        out |= {p + "attention.output.dense.weight": (H, H), p + "attention.output.dense.bias": (H,),
                p + "attention.output.LayerNorm.weight": (H,), p + "attention.output.LayerNorm.bias": (H,),
                p + "intermediate.dense.weight": (Im, H), p + "intermediate.dense.bias": (Im,),
                p + "output.dense.weight": (H, Im), p + "output.dense.bias": (H,),
                p + "output.LayerNorm.weight": (H,), p + "output.LayerNorm.bias": (H,)}
    return out


def parameters(config: dict[str, Any]) -> int:
    """Parameters of the encoder of a (checked) config, by arithmetic."""
    return sum(math.prod(s) for s in expected_shapes(config).values())


# --------------------------------------------------------------------------------------------------------- tensors

def our_name(key: str) -> str | None:
    """A checkpoint's tensor name as text.MiniLM names it (without the `bert.` prefix, LayerNorm gamma/beta as
    weight/bias), or None for a tensor that is not part of the encoder (pooler, task heads, position_ids)."""
    k = key[5:] if key.startswith("bert.") else key
    if k.startswith(HEADS) or key.startswith(HEADS) or k == "embeddings.position_ids":
        return None
    if k.endswith("LayerNorm.gamma"):
        k = k[:-5] + "weight"
    elif k.endswith("LayerNorm.beta"):
        k = k[:-4] + "bias"
    return k


def _header(data: bytes) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The safetensors header (JSON) read by hand, before any tensor is made: name -> (dtype, shape)."""
    if len(data) < 8:
        raise FolderError("model.safetensors is too short to be a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(MAX_HEADER, len(data) - 8):
        raise FolderError("model.safetensors has a corrupt header (its declared length runs past the file)")
    try:
        head = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FolderError("model.safetensors has a corrupt header (not JSON)") from None
    if not isinstance(head, dict):
        raise FolderError("model.safetensors has a corrupt header (not a JSON object)")
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        if not (isinstance(v, dict) and isinstance(v.get("dtype"), str) and isinstance(v.get("shape"), list)
                and all(type(d) is int and d >= 0 for d in v["shape"])):
            raise FolderError(f"model.safetensors has a corrupt header entry ({k[:60]!r})")
        out[k] = (v["dtype"], tuple(v["shape"]))
    return out


def _names(keys: list[str]) -> dict[str, str]:
    """Checkpoint name -> our name for the encoder's tensors; refuses two tensors that would be the same one."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for k in keys:
        ours = our_name(k)
        if ours is None:
            continue
        if ours in seen:
            raise FolderError(f"model.safetensors holds {seen[ours]!r} and {k!r}: the same tensor twice")
        seen[ours] = k
        out[k] = ours
    return out


def _check_shapes(shapes: dict[str, tuple[int, ...]], config: dict[str, Any], where: str = "model.safetensors") -> None:
    """Refuse missing, unexpected and wrongly shaped tensors, naming the first few."""
    want = expected_shapes(config)
    missing = [k for k in want if k not in shapes]
    extra = [k for k in shapes if k not in want]
    wrong = [f"{k} {tuple(shapes[k])} (the config needs {want[k]})" for k in want
             if k in shapes and tuple(shapes[k]) != want[k]]
    if missing:
        raise FolderError(f"{where} lacks {len(missing)} tensor(s) the config needs: {', '.join(missing[:SHOWN])}")
    if extra:
        raise FolderError(f"{where} holds {len(extra)} tensor(s) a BERT encoder does not have: "
                          f"{', '.join(extra[:SHOWN])}")
    if wrong:
        raise FolderError(f"{where}: {len(wrong)} tensor(s) of the wrong shape for the config: "
                          f"{'; '.join(wrong[:SHOWN])}")


def _check_finite(tensors: dict[str, torch.Tensor]) -> None:
    # A finite sum means every element is finite (NaN and inf propagate): the fast path; a tensor whose sum is not
    # finite is looked at element by element (its sum may merely overflow).
    bad = [k for k, v in tensors.items()
           if not bool(torch.isfinite(v.sum())) and not bool(torch.isfinite(v).all())]
    if bad:
        raise FolderError(f"{len(bad)} tensor(s) hold NaN or infinite weights: {', '.join(bad[:SHOWN])}")


def _tensors(data: bytes, config: dict[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    """The encoder's tensors (float32, our names) from model.safetensors, and the file's dtype(s) in words."""
    head = _header(data)
    names = _names(list(head))
    _check_shapes({names[k]: head[k][1] for k in names}, config)
    dtypes = sorted({head[k][0] for k in names})
    if any(d not in DTYPES for d in dtypes):
        raise FolderError(f"model.safetensors stores the encoder's weights as {'/'.join(dtypes)}; accepted: "
                          f"{', '.join(DTYPES)}")
    from safetensors.torch import load

    try:
        raw = load(bytes(data))
    except Exception as e:   # safetensors' own checks (offsets, sizes): its error type is the Rust binding's
        line = (str(e).strip().splitlines() or [type(e).__name__])[0][:100]
        raise FolderError(f"model.safetensors cannot be read ({line})") from None
    out = {names[k]: v.to(torch.float32).contiguous() for k, v in raw.items() if k in names}
    _check_finite(out)
    return out, "/".join(dtypes)


# ------------------------------------------------------------------------------------------ pooling and tokenizer

def _pooling(r: _Reader, hidden: int) -> tuple[bool, list[str], int | None]:
    """sentence-transformers' modules: (normalize, notes, max_seq_length). Refuses modules the encoder does not
    compute (Dense, another pooling) and a pooling other than the mean."""
    notes: list[str] = []
    pooling_path, normalize = None, False
    if r.has("modules.json"):
        mods = r.json("modules.json")
        if not (isinstance(mods, list) and all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in mods)):
            raise FolderError("modules.json must be a list of modules, each with a type")
        for m in mods:
            kind = m["type"][len(ST):] if m["type"].startswith(ST) else None
            path = m.get("path", "")
            if kind == "Transformer":
                if path not in ("", "."):
                    raise FolderError(f"modules.json puts the transformer in {str(path)[:40]!r}; the folder's own "
                                      "config.json and model.safetensors must be it")
            elif kind == "Pooling":
                if not (isinstance(path, str) and path and _safe(path)):
                    raise FolderError("modules.json: the pooling module's path must be a folder inside this one")
                pooling_path = path.rstrip("/") + "/config.json"
            elif kind == "Normalize":
                normalize = True
            else:
                raise FolderError(f"modules.json holds a {m['type'][:60]!r} module; accepted: "
                                  "Transformer, Pooling (mean), Normalize")
        if pooling_path is None:
            raise FolderError("modules.json has no Pooling module; accepted: mean pooling")
        if not r.has(pooling_path):
            raise FolderError(f"modules.json names a pooling module, but {pooling_path} is not in the folder")
    elif r.has("1_Pooling/config.json"):
        pooling_path = "1_Pooling/config.json"
        notes.append("no modules.json: its 1_Pooling/config.json is read; embeddings are not normalised by the folder")
    else:
        notes.append("no sentence-transformers modules: mean pooling of the last layer assumed (as "
                     "sentence-transformers does for a plain BERT folder)")
    if pooling_path is not None:
        pc = r.json(pooling_path)
        if not isinstance(pc, dict):
            raise FolderError(f"{pooling_path} must hold a JSON object")
        on = [k for k in POOLING_MODES if pc.get(k, False) is not False]
        if on != ["pooling_mode_mean_tokens"] or pc.get("pooling_mode_mean_tokens") is not True:
            said = ", ".join(k.removeprefix("pooling_mode_") for k in on) or "none"
            raise FolderError(f"{pooling_path}: pooling by {said} is not supported; accepted: mean pooling "
                              "(pooling_mode_mean_tokens alone)")
        dim = pc.get("word_embedding_dimension", hidden)
        if dim != hidden:
            raise FolderError(f"{pooling_path}: word_embedding_dimension {str(dim)[:20]} differs from the config's "
                              f"hidden_size {hidden}")
    max_seq = None
    if r.has("sentence_bert_config.json"):
        sb = r.json("sentence_bert_config.json")
        if not isinstance(sb, dict):
            raise FolderError("sentence_bert_config.json must hold a JSON object")
        max_seq = sb.get("max_seq_length")
        if max_seq is not None and (type(max_seq) is not int
                                    or not 1 <= max_seq <= LIMITS["max_position_embeddings"][1]):
            raise FolderError(f"sentence_bert_config.json: max_seq_length must be a whole number, got "
                              f"{str(max_seq)[:20]!r}")
        if sb.get("do_lower_case") is True:
            notes.append("sentence_bert_config.json asks to lower-case text first; the tokenizer gets it as written")
    if not normalize:
        notes.append("the folder does not L2-normalise its embeddings; the lab does (cosines are unchanged)")
    return normalize, notes, max_seq


def check_tokenizer(text: Any, config: dict[str, Any], max_tokens: int) -> str:
    """The tokenizer.json text set up as the lab uses it (no padding, truncation at max_tokens), after checking
    that Rust's `tokenizers` reads it, that it pads with id 0 (text.PAD_ID) and that its ids fit the vocabulary."""
    if not isinstance(text, str):
        raise FolderError("tokenizer.json must be text")
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_str(text)
    except Exception as e:   # the Rust binding's own exception type
        line = (str(e).strip().splitlines() or [type(e).__name__])[0][:100]
        raise FolderError(f"tokenizer.json is not a tokenizer the `tokenizers` library can read ({line})") from None
    pad = tok.padding["pad_id"] if tok.padding else tok.token_to_id("[PAD]")
    if pad is None:
        raise FolderError(f"tokenizer.json has no padding token; the encoder pads with id {T.PAD_ID} ([PAD])")
    if pad != T.PAD_ID:
        raise FolderError(f"tokenizer.json pads with id {pad}; the encoder pads with id {T.PAD_ID} (BERT's [PAD]): "
                          "refused")
    if tok.get_vocab_size(with_added_tokens=True) > config["vocab_size"]:
        raise FolderError(f"tokenizer.json has {tok.get_vocab_size(with_added_tokens=True):,} tokens; the model's "
                          f"vocabulary holds {config['vocab_size']:,}")
    if not 2 <= max_tokens <= config["max_position_embeddings"]:
        raise FolderError(f"at most {max_tokens} tokens per sentence does not fit the model's "
                          f"{config['max_position_embeddings']} positions")
    tok.no_padding()
    tok.enable_truncation(max_tokens)
    try:
        probe = tok.encode("A short sentence to check the tokenizer.").ids
    except Exception as e:
        raise FolderError(f"tokenizer.json cannot tokenize a sentence ({type(e).__name__})") from None
    if not probe or max(probe) >= config["vocab_size"]:
        raise FolderError("tokenizer.json gives token ids outside the model's vocabulary")
    return tok.to_str()


# ------------------------------------------------------------------------------------------------------------ name

def _clean(s: str, limit: int = 100) -> str | None:
    s = "".join(ch for ch in unicodedata.normalize("NFC", s) if unicodedata.category(ch)[0] != "C").strip()
    s = s.strip("#*`_ ").strip()
    return (s if len(s) <= limit else s[:limit - 1] + "…") or None


def _name(r: _Reader, cfg: dict[str, Any]) -> str | None:
    """The model's name, if the folder says: README.md's first heading, else the folder's name in the zip, else the
    config's hub id (`_name_or_path` of the form owner/name)."""
    if r.has("README.md") and r.files[r.prefix + "README.md"].file_size <= SMALL:
        try:
            lines = r.read("README.md", SMALL).decode("utf-8", "replace").splitlines()
        except FolderError:
            lines = []
        if lines and lines[0].strip() == "---":   # YAML front matter: skipped, not parsed
            end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), len(lines))
            lines = lines[end + 1:]
        for line in lines:
            if re.match(r"^#\s+\S", line):
                return _clean(line[1:])
    if r.prefix:
        return _clean(r.prefix.rstrip("/"))
    hub = cfg.get("_name_or_path")
    if isinstance(hub, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", hub):
        return _clean(hub)
    return None


# ------------------------------------------------------------------------------------------------------ the reader

def model_type(data: bytes, limit: int) -> str:
    """The model_type a zipped folder's config.json names ("" when it names none): which reader takes it."""
    zf, files, prefix = _entries(data, limit, need=())
    raw = _Reader(zf, files, prefix, limit).json("config.json")
    return str(raw.get("model_type", "")) if isinstance(raw, dict) else ""


# Image classifiers transformers writes in plain PyTorch, by model_type: the class and the config fields that size it.
VISION = {"vit": ("ViTForImageClassification", {"hidden_size": (1, 4096), "num_hidden_layers": (1, 48),
                                                 "num_attention_heads": (1, 64), "intermediate_size": (1, 16384),
                                                 "image_size": (8, 1024), "patch_size": (1, 64),
                                                 "num_channels": (1, 16)}),
          "resnet": ("ResNetForImageClassification", {"embedding_size": (1, 4096), "num_channels": (1, 16)})}


class Logits(nn.Module):
    """A transformers image classifier as a model of one tensor in, logits out (what every lab measures)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(pixel_values=x).logits
        return logits


def read_image_classifier(data: bytes, limit: int) -> tuple[nn.Module, tuple[int, ...], dict[str, Any]]:
    """A zipped Hugging Face image classifier folder (ViT or ResNet: config.json + model.safetensors) as a plain
    module (transformers' own class for the model_type, never remote code), loaded strictly with its weights; with
    one example's input shape and a card fragment. Runs where uploads are read (the confined process): the server
    receives it as a graph (slimcore.graph), not as transformers code."""
    zf, files, prefix = _entries(data, limit, need=("model.safetensors",))
    r = _Reader(zf, files, prefix, limit)
    raw = r.json("config.json")
    if not isinstance(raw, dict):
        raise FolderError("config.json is not a JSON object")
    if raw.get("auto_map") or raw.get("trust_remote_code"):
        raise FolderError("config.json asks for the folder's own code (auto_map): SlimLab never runs remote code")
    kind = raw.get("model_type")
    if kind not in VISION:
        raise FolderError(f"model_type {str(kind)[:30]!r} is not an image classifier SlimLab reads (accepted: "
                          f"{', '.join(VISION)}; sentence encoders: bert)")
    cls_name, sizes = VISION[kind]
    if raw.get("architectures") not in (None, [cls_name]):
        raise FolderError(f"config.json's architectures {str(raw.get('architectures'))[:60]} is not {cls_name}")
    for key, (lo, hi) in sizes.items():
        v = raw.get(key)
        if v is not None and not (type(v) is int and lo <= v <= hi):
            raise FolderError(f"config.json: {key} = {str(v)[:20]} is outside {lo:,}..{hi:,}, the sizes accepted")
    for key in ("hidden_sizes", "depths"):
        v = raw.get(key)
        if v is not None and not (isinstance(v, list) and 0 < len(v) <= 8 and all(type(x) is int and 0 < x <= 4096
                                                                                    for x in v)):
            raise FolderError(f"config.json: {key} must be a short list of sizes")
    labels = raw.get("id2label") or {}
    if not isinstance(labels, dict) or not 2 <= len(labels) <= 100_000:
        raise FolderError("config.json: id2label must name between 2 and 100,000 classes")
    import transformers

    try:
        config = transformers.AutoConfig.for_model(kind, **{k: v for k, v in raw.items()
                                                              if k not in ("transformers_version", "_name_or_path",
                                                                           "model_type")})
        getattr(transformers, cls_name)
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise FolderError(f"config.json does not describe a {cls_name} ({type(e).__name__}: {str(e)[:80]})") from None
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        state = load(r.read("model.safetensors"))
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise FolderError(f"model.safetensors cannot be read ({str(e)[:80]})") from None
    _check_finite(state)
    try:   # transformers maps the checkpoint's names to its classes' (its own conversion); nothing from the folder runs
        model, info = getattr(transformers, cls_name).from_pretrained(
            None, config=config, state_dict={k: v.float() if v.is_floating_point() else v for k, v in state.items()},
            output_loading_info=True, trust_remote_code=False, local_files_only=True)
    except (TypeError, ValueError, KeyError, RuntimeError, OSError) as e:
        raise FolderError(f"model.safetensors does not fit config.json's {cls_name} ({str(e)[:100]})") from None
    odd = [k for part in ("missing_keys", "unexpected_keys", "mismatched_keys") for k in info.get(part, [])]
    if odd:
        raise FolderError(f"model.safetensors does not fit config.json's {cls_name}: "
                          f"{', '.join(str(k)[:60] for k in odd[:SHOWN])}")
    model.eval()
    channels = int(config.num_channels)
    side = int(getattr(config, "image_size", 0) or 224)
    card = {"model_type": kind, "classes": len(labels), "name": _clean(str(raw.get("_name_or_path") or "")) or None}
    return Logits(model).eval(), (channels, side, side), card


def read_folder(data: bytes, limit: int) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Check and read a zip of a Hugging Face BERT encoder folder (at the zip's top or one folder deep): the files read
    may expand to `limit` bytes in all, and nothing is extracted before its declared size is checked; other files are
    ignored. Returns (description, tensors):
    - description, plain JSON: {"kind": "hf-encoder", "config": check_config's fields, "tokenizer": tokenizer.json
      text set up as used (no padding, truncation at max_tokens), "pooling": "mean", "normalize": whether the folder
      L2-normalises, "name": the model's name or None, "max_tokens": int, "dtype": the file's weight dtype(s),
      "parameters": int, "notes": [what was assumed, in words]};
    - tensors: float32, named as text.MiniLM's state dict (no `bert.` prefix, no pooler or head, no position_ids).
    Raises FolderError with one line for anything that cannot be used."""
    if type(limit) is not int or limit <= 0:
        raise ValueError(f"limit must be a positive number of bytes, got {limit!r}")
    zf, files, prefix = _entries(data, limit)
    r = _Reader(zf, files, prefix, limit)
    raw = r.json("config.json")
    config = check_config(raw)
    n = parameters(config)
    size = files[prefix + "model.safetensors"].file_size
    if 2 * n > limit or 2 * n > size:   # 2 bytes a weight at the least (fp16/bf16): refused before reading weights
        raise FolderError(f"the config describes {n:,} parameters, at least {2 * n / 10**6:,.1f} MB of weights; "
                          f"model.safetensors is {size / 10**6:,.1f} MB and the limit {limit / 10**6:,.1f} MB")
    normalize, notes, max_seq = _pooling(r, config["hidden_size"])
    max_tokens = min(max_seq or T.MAX_TOKENS, config["max_position_embeddings"])
    tok = r.read("tokenizer.json")
    try:
        tok_text = tok.decode("utf-8")
    except UnicodeDecodeError:
        raise FolderError("tokenizer.json is not UTF-8 text") from None
    tokenizer = check_tokenizer(tok_text, config, max_tokens)
    name = _name(r, raw)
    tensors, dtype = _tensors(r.read("model.safetensors"), config)
    doc = {"kind": KIND, "config": config, "tokenizer": tokenizer, "pooling": "mean", "normalize": normalize,
           "name": name, "max_tokens": max_tokens, "dtype": dtype, "parameters": n, "notes": notes}
    return doc, tensors


# ----------------------------------------------------------------------------------------------- in the server

def check(doc: Any) -> dict[str, Any]:
    """A description (from read_folder, possibly in another process) checked again, field by field: a new dict."""
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise FolderError(f"not a description of a Hugging Face encoder (kind {KIND!r})")
    config = check_config(doc.get("config"))
    if doc.get("pooling") != "mean":
        raise FolderError("only mean pooling is supported")
    if type(doc.get("normalize")) is not bool:
        raise FolderError("the description's normalize must be true or false")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise FolderError("the description's name must be text or null")
    mt = doc.get("max_tokens")
    if type(mt) is not int:
        raise FolderError("the description's max_tokens must be a whole number")
    notes = doc.get("notes", [])
    if not (isinstance(notes, list) and all(isinstance(s, str) for s in notes)):
        raise FolderError("the description's notes must be a list of text")
    dtype = doc.get("dtype", "F32")
    return {"kind": KIND, "config": config, "tokenizer": check_tokenizer(doc.get("tokenizer"), config, mt),
            "pooling": "mean", "normalize": doc["normalize"], "name": _clean(name) if name else None,
            "max_tokens": mt, "dtype": dtype if isinstance(dtype, str) else "F32", "parameters": parameters(config),
            "notes": list(notes)}


def encoder(doc: dict[str, Any], tensors: dict[str, torch.Tensor]) -> T.MiniLM:
    """The text.MiniLM of a description with the given tensors (checked again: names, shapes, float dtype, finite),
    loaded strictly; eval mode, frozen. The tensors are copied (the given dict is not kept)."""
    config = check(doc)["config"]
    if not (isinstance(tensors, dict) and all(isinstance(v, torch.Tensor) for v in tensors.values())):
        raise FolderError("the tensors must be a dict of name -> tensor")
    _check_shapes({k: tuple(v.shape) for k, v in tensors.items()}, config, "the tensors")
    if any(not v.is_floating_point() for v in tensors.values()):
        raise FolderError("the tensors must be floating point")
    state = {k: v.detach().to(torch.float32) for k, v in tensors.items()}
    _check_finite(state)
    c = config
    # Built as text.load_model builds minilm (its own tensors, then a strict copy): a meta-device build would skip the
    # random initialisation, but its first use in a process costs more (about 2 s) than initialising MiniLM (0.2 s).
    model = T.MiniLM(c["vocab_size"], c["hidden_size"], heads=[c["num_attention_heads"]] * c["num_hidden_layers"],
                     ffn=[c["intermediate_size"]] * c["num_hidden_layers"], positions=c["max_position_embeddings"],
                     head_dim=c["hidden_size"] // c["num_attention_heads"], eps=c["layer_norm_eps"],
                     type_vocab=c["type_vocab_size"])
    model.load_state_dict(state, strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def sample(doc: dict[str, Any], tensors: dict[str, torch.Tensor], name: str, card_extra: dict[str, Any] | None = None
           ) -> T.TextSample:
    """The TextSample of an uploaded encoder: its encoder, the project's sentence set tokenized with its own tokenizer,
    and a card like minilm's (with `card_extra`, e.g. the file's size and hash, on top)."""
    doc = check(doc)
    model = encoder(doc, tensors)
    data = T.load_sentences_with(doc["tokenizer"])
    c = doc["config"]
    card = {"model": doc["name"] or name,
            "task": f"sentence embeddings ({c['hidden_size']} dimensions, mean-pooled and L2-normalised)",
            "source": "upload", "format": FORMAT,
            "license": "as the uploader's folder states (not read)",
            "trained_by": "not stated: an uploaded model, not trained here",
            "encoder": "slimcore/text.py: BERT layers, mean pooling and normalisation in plain PyTorch, built to the "
                       "folder's config.json (slimcore.hf); its tokenizer.json tokenizes the sentence set",
            "evaluation": "sample_models/minilm-sentences.json: paraphrase groups on 16 topics and contrast pairs; "
                          "split by group (seed 0)",
            "reference": "none (an uploaded model)",
            "architecture": T.architecture(model), "parameters": sum(p.numel() for p in model.parameters()),
            "config": {k: c[k] for k in LIMITS} | {"layer_norm_eps": c["layer_norm_eps"]},
            "weights_dtype": doc["dtype"], "max_tokens": doc["max_tokens"], "normalize": doc["normalize"],
            "notes": doc["notes"],
            "sentences": {"train": len(data.train), "test": len(data.test), "quick": data.quick,
                          "test_pairs": len(data.test.pairs), "about": data.about}}
    return T.TextSample(name, model, data, {**card, **(card_extra or {})})


__all__ = ["FolderError", "KIND", "FORMAT", "LIMITS", "ARCHITECTURES", "read_folder", "check_config",
           "expected_shapes", "parameters", "our_name", "check_tokenizer", "check", "encoder", "sample"]
