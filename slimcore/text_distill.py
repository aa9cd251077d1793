"""Distillation of the text encoder: a shallower MiniLM, initialised from the teacher's own layers, learns to embed
sentences as the teacher does.

A student keeps `layers` of the teacher's transformer layers (see `kept_layers`) and all of its embedding tables. It is
trained on the TRAIN split only, with

    loss = alpha * MSE(e_s, e_t)  +  (1 - alpha) * T^2 * KL(softmax(S_t / T) || softmax(S_s / T))

where e are a sentence's embeddings (unit length: their MSE over the 384 dimensions is 2 (1 - cos) / 384; MSE to the
teacher's embeddings is also what sentence-transformers' MSELoss distils with) and S = E E^T is the batch's cosine-similarity matrix with the
diagonal left out: each row is a distribution over the other sentences of the batch, "which of them is most like
me". The temperature acts on that distribution. Cosines lie in [-1, 1], so the sensible temperatures are small
(0.05-1): T = 0.1 turns a cosine gap of 0.3 into a 20x probability ratio; at T = 2 all rows are nearly uniform.

Why T^2: the gradient of the KL term with respect to a similarity is (p_s - p_t) / T. At large T the distributions are
close to uniform, p_s - p_t shrinks as (S_s - S_t) / T, and the gradient as 1 / T^2; multiplying by T^2 keeps it on
one scale whatever T is (Hinton, Vinyals & Dean 2015). There T^2 * KL tends to half the variance of S_s - S_t over
each row: a mean-squared error between the two similarity matrices (after centring). At small T the term only cares
about which sentences are nearest, and T^2 then damps a gradient that would otherwise grow as 1 / T.

Why MSE rather than 1 - cos: the same gradient direction, 192 times smaller. Measured on this sample (3-layer student),
1 - cos (~0.2 untrained) dwarfs T^2 * KL (~0.001-0.002 at T = 0.1-1): alpha = 0.5 and alpha = 1 trained nearly the same
student. With MSE the two parts are of one order and alpha chooses between them (Adam's steps hardly depend on the
loss's overall scale, so alpha = 1 trains as fast either way).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import text as T

MAX_LAYERS = 5   # a student has 1..5 of the teacher's 6 transformer layers
FRAGMENT = 0.6   # a fragment variant keeps this share of a sentence's words (a contiguous span)
DROP = 0.2       # a word-dropped variant drops each word with this probability (never below half of the words)


# ------------------------------------------------------------------------------------------------------- students

def kept_layers(teacher_layers: int, layers: int) -> tuple[int, ...]:
    """Which teacher layers a student of `layers` layers keeps: the first and the last always, the others evenly
    spaced between them (rounded half up); a one-layer student keeps the last. For 6 teacher layers: 1 -> (5,),
    2 -> (0, 5), 3 -> (0, 3, 5), 4 -> (0, 2, 3, 5), 5 -> (0, 1, 3, 4, 5). Measured on the quick set, keeping the
    first layer matters: the 5-layer student without it starts at a mean cosine of 0.80, with it at 0.94."""
    if not 1 <= layers < teacher_layers:
        raise ValueError(f"a student has 1 to {teacher_layers - 1} of the teacher's {teacher_layers} layers, "
                         f"not {layers}")
    if layers == 1:
        return (teacher_layers - 1,)
    return tuple(math.floor(k * (teacher_layers - 1) / (layers - 1) + 0.5) for k in range(layers))


def student_from_teacher(teacher: T.MiniLM, layers: int) -> T.MiniLM:
    """A shallower encoder: the teacher's embedding tables and the layers `kept_layers` chooses, copied (the teacher
    is not touched). Eval mode, frozen, like slimcore.text.variant."""
    n = len(teacher.encoder.layer)
    keep = kept_layers(n, layers)
    shape = teacher.shape()
    emb = teacher.embeddings
    student = T.MiniLM(emb.word_embeddings.num_embeddings, emb.word_embeddings.embedding_dim,
                       heads=[shape["heads"][i] for i in keep], ffn=[shape["ffn"][i] for i in keep],
                       positions=emb.position_embeddings.num_embeddings)
    state = {}
    for k, v in teacher.state_dict().items():
        if k.startswith("encoder.layer."):
            i = T.layer_index(k)
            if i in keep:
                state[k.replace(f"encoder.layer.{i}.", f"encoder.layer.{keep.index(i)}.", 1)] = v
        else:
            state[k] = v
    student.load_state_dict(state)  # copies into the student's own tensors
    student.eval()
    for p in student.parameters():
        p.requires_grad_(False)
    return student


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------------------------------------- loss

def similarity_logits(emb: torch.Tensor) -> torch.Tensor:
    """Each sentence's cosine similarity to the OTHER sentences of the batch: a B x (B - 1) matrix (the diagonal,
    always 1, is left out). The embeddings are unit length, so E E^T holds the cosines."""
    b = emb.shape[0]
    s = emb @ emb.T
    return s[~torch.eye(b, dtype=torch.bool, device=emb.device)].view(b, b - 1)


def similarity_distribution(emb: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(S / T) over the other sentences of the batch, one row per sentence."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return F.softmax(similarity_logits(emb) / temperature, dim=-1)


@dataclass(frozen=True)
class LossParts:
    total: torch.Tensor
    embedding: torch.Tensor   # MSE of student and teacher embeddings (= 2 (1 - cos) / 384 for unit vectors)
    kl: torch.Tensor          # KL(teacher_T || student_T) of the similarity rows, averaged over rows, before T^2


def distill_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor, temperature: float, alpha: float) -> LossParts:
    """alpha * MSE(e_s, e_t) + (1 - alpha) * T^2 * KL(softmax(S_t / T) || softmax(S_s / T)) for one batch."""
    if student_emb.shape[0] < 3:
        raise ValueError("the similarity term needs at least 3 sentences in a batch")
    embedding = F.mse_loss(student_emb, teacher_emb)
    log_s = F.log_softmax(similarity_logits(student_emb) / temperature, dim=-1)
    log_t = F.log_softmax(similarity_logits(teacher_emb) / temperature, dim=-1)
    kl = F.kl_div(log_s, log_t, reduction="batchmean", log_target=True)
    return LossParts(alpha * embedding + (1 - alpha) * temperature ** 2 * kl, embedding, kl)


# --------------------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class TextDistillConfig:
    """One distillation run of the text encoder (plain data: it keys caches and session state)."""

    layers: int = 3             # transformer layers the student keeps (of the teacher's 6)
    temperature: float = 0.2    # T of the in-batch similarity softmax; cosines are in [-1, 1], so small T is sharp
    alpha: float = 0.5          # weight of the embedding MSE; 1 - alpha goes to the similarity KL
    epochs: int = 3
    lr: float = 1e-4            # AdamW learning rate
    batch_size: int = 32        # sentences per batch: the in-batch similarity rows have batch_size - 1 entries
    seed: int = 0               # word-dropped variants, fragments and batch order

    def __post_init__(self) -> None:
        checks = [
            (isinstance(self.layers, int) and 1 <= self.layers <= MAX_LAYERS,
             f"student layers must be 1 to {MAX_LAYERS}, got {self.layers}"),
            (math.isfinite(self.temperature) and 0.01 <= self.temperature <= 100,
             f"temperature must be in [0.01, 100], got {self.temperature}"),
            (0.0 <= self.alpha <= 1.0, f"alpha must be in [0, 1], got {self.alpha}"),
            (isinstance(self.epochs, int) and 1 <= self.epochs <= 50, f"epochs must be 1 to 50, got {self.epochs}"),
            (math.isfinite(self.lr) and 0 < self.lr <= 1e-2, f"learning rate must be in (0, 0.01], got {self.lr}"),
            (isinstance(self.batch_size, int) and 4 <= self.batch_size <= 256,
             f"batch size must be 4 to 256 sentences, got {self.batch_size}"),
            (isinstance(self.seed, int) and self.seed >= 0, f"seed must be a whole number >= 0, got {self.seed}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


# ------------------------------------------------------------------------------------------------ training sentences

@dataclass(frozen=True)
class Pool:
    """The sentences a student trains on: each train sentence, a word-dropped variant and a fragment of it."""

    texts: tuple[str, ...]
    ids: tuple[tuple[int, ...], ...]
    source: tuple[int, ...]    # index of the train sentence each one comes from
    group: tuple[int, ...]     # paraphrase group of that sentence (a sentence of no group is its own group)
    kind: tuple[str, ...]      # "sentence", "word-dropped" or "fragment"

    def __len__(self) -> int:
        return len(self.texts)


def _dropped(words: list[str], rng: np.random.Generator) -> list[str]:
    """Each word dropped with probability DROP; when that drops none or more than half, one word at random."""
    keep = [w for w in words if rng.random() >= DROP]
    if len(words) // 2 <= len(keep) < len(words):
        return keep
    j = int(rng.integers(len(words)))
    return words[:j] + words[j + 1:]


def _fragment(words: list[str], rng: np.random.Generator) -> list[str]:
    n = max(1, math.ceil(len(words) * FRAGMENT))
    start = int(rng.integers(len(words) - n + 1))
    return words[start:start + n]


def training_pool(split: T.TextSplit, seed: int) -> Pool:
    """The train split's sentences, each followed by a word-dropped variant (each word dropped with probability 0.2,
    at least half kept) and a fragment (a contiguous 60 % of its words), drawn from the seed. The variants are
    labelled by the teacher like any sentence: they add inputs, not new labels, and come from train sentences only."""
    rng = np.random.default_rng(seed)
    texts, source, group, kind = [], [], [], []
    for i, text in enumerate(split.texts):
        words = text.split()
        g = split.groups[i] if split.groups[i] >= 0 else -1 - i
        variants = [text]
        if len(words) >= 2:
            variants += [" ".join(_dropped(words, rng)), " ".join(_fragment(words, rng))]
        for v, k in zip(variants, ("sentence", "word-dropped", "fragment")):
            texts.append(v)
            source.append(i)
            group.append(g)
            kind.append(k)
    ids = T.encode(texts)
    return Pool(tuple(texts), tuple(tuple(x) for x in ids), tuple(source), tuple(group), tuple(kind))


def batches(pool: Pool, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """An epoch's batches (indices into the pool): paraphrase groups in a seeded random order, each group's sentences
    and variants side by side, cut into batches of batch_size (a last batch of fewer than 3 joins the one before).
    So most sentences meet their paraphrase and their own variants in a batch, among sentences of other groups:
    the teacher's similarity rows have something to rank."""
    rng = np.random.default_rng([seed, epoch])
    members: dict[int, list[int]] = {}
    for i, g in enumerate(pool.group):
        members.setdefault(g, []).append(i)
    order = [members[g] for g in rng.permutation(list(members))]
    flat = [i for m in order for i in m]
    out = [flat[s:s + batch_size] for s in range(0, len(flat), batch_size)]
    if len(out) > 1 and len(out[-1]) < 3:
        out[-2] += out.pop()
    return out


@torch.inference_mode()
def embed_ids(model: nn.Module, ids: tuple[tuple[int, ...], ...], batch_size: int = 32) -> torch.Tensor:
    """Embeddings of token-id lists, batched by length, in the given order."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = torch.empty(len(ids), 384)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        out[idx] = model(T.pad([list(ids[i]) for i in idx])).float()
    return out


# ------------------------------------------------------------------------------------------------------ training

@dataclass(frozen=True)
class TextEpoch:
    """Measured after one epoch: mean loss parts over its batches, and the student on the quick set."""

    epoch: int
    loss: float
    embedding_loss: float     # mean MSE to the teacher's embeddings on the training batches
    kl: float                 # mean KL of the similarity rows, before T^2 and (1 - alpha)
    quick: T.TextQuality      # the student against the teacher on the quick set (128 held-out sentences)
    seconds: float            # wall-clock time of the epoch, evaluation included


@dataclass(frozen=True)
class TextDistillResult:
    """A finished run: the trained student, its history, and the untrained student (same layers) as the baseline."""

    config: TextDistillConfig
    student: T.MiniLM
    kept: tuple[int, ...]            # teacher layers the student started from
    history: tuple[TextEpoch, ...]
    untrained_quick: T.TextQuality   # the student before training, on the quick set
    untrained_test: T.TextQuality    # ... and on the whole test split
    test: T.TextQuality              # the trained student on the whole test split
    train_sentences: int             # sentences per epoch (train split and its variants)
    teacher_seconds: float           # embedding the training pool with the teacher, once per run
    seconds: float                   # the whole run


def distill(teacher: T.MiniLM, data: T.TextData, cfg: TextDistillConfig,
            progress: Callable[[int, float], None] | None = None,
            on_epoch: Callable[[TextEpoch], None] | None = None,
            references: dict[str, torch.Tensor] | None = None) -> TextDistillResult:
    """Train a student of cfg.layers layers (initialised from the teacher's) on the train split and its variants.

    AdamW on the transformer layers; the embedding tables stay as the teacher's (on 240 sentences only a few hundred
    of the 30,522 word vectors would ever get a gradient, and weight decay would shrink all the others). Seeded and
    deterministic: no dropout, the variants and batch order come from cfg.seed. `progress(epoch, fraction of the run)`
    is called after every batch; `on_epoch` after every epoch. `references` may hold the teacher's embeddings of
    the quick set ("quick") and the whole test split ("test"); computed here otherwise. The teacher is not touched.
    """
    t_start = time.perf_counter()
    quick, test = data.quick_set, data.test
    refs = dict(references or {})
    if "quick" not in refs:
        refs["quick"] = T.embed(teacher, quick)
    if "test" not in refs:
        refs["test"] = T.embed(teacher, test)
    student = student_from_teacher(teacher, cfg.layers)
    untrained_quick = T.evaluate(student, quick, refs["quick"])
    untrained_test = T.evaluate(student, test, refs["test"])

    pool = training_pool(data.train, cfg.seed)
    t0 = time.perf_counter()
    targets = embed_ids(teacher, pool.ids)
    teacher_seconds = time.perf_counter() - t0

    for name, p in student.named_parameters():
        p.requires_grad_(name.startswith("encoder."))
    matrices = [p for n, p in student.named_parameters() if n.startswith("encoder.") and p.dim() == 2]
    others = [p for n, p in student.named_parameters() if n.startswith("encoder.") and p.dim() < 2]
    opt = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.01}, {"params": others, "weight_decay": 0.0}],
                            lr=cfg.lr)
    plan = [batches(pool, cfg.batch_size, cfg.seed, e) for e in range(cfg.epochs)]
    total, done = sum(len(b) for b in plan), 0
    if progress:
        progress(0, 0.0)
    history = []
    for epoch, epoch_batches in enumerate(plan, start=1):
        t0 = time.perf_counter()
        sums = np.zeros(3)
        student.train()
        for idx in epoch_batches:
            parts = distill_loss(student(T.pad([list(pool.ids[i]) for i in idx])), targets[idx], cfg.temperature,
                                 cfg.alpha)
            opt.zero_grad(set_to_none=True)
            parts.total.backward()
            opt.step()
            sums += [parts.total.item(), parts.embedding.item(), parts.kl.item()]
            done += 1
            if progress:
                progress(epoch, done / total)
        student.eval()
        mean = sums / len(epoch_batches)
        record = TextEpoch(epoch, float(mean[0]), float(mean[1]), float(mean[2]),
                           T.evaluate(student, quick, refs["quick"]), time.perf_counter() - t0)
        history.append(record)
        if on_epoch:
            on_epoch(record)
    for p in student.parameters():
        p.requires_grad_(False)
    return TextDistillResult(cfg, student, kept_layers(len(teacher.encoder.layer), cfg.layers), tuple(history),
                             untrained_quick, untrained_test, T.evaluate(student, test, refs["test"]), len(pool),
                             teacher_seconds, time.perf_counter() - t_start)
