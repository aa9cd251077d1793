"""What distillation needs from the sentence encoder (the family's part; the training loop is
slimcore.distillation.distill): a shallower MiniLM initialised from the teacher's own layers, the similarity loss,
and the training sentences.

A student keeps a share (cfg.student) of the teacher's transformer layers (see `kept_layers`) and all of its
embedding tables. It is trained on the TRAIN split only, with

    loss = alpha * T^2 * KL(softmax(S_t / T) || softmax(S_s / T))  +  (1 - alpha) * MSE(e_s, e_t)
           (soft: the in-batch similarity rows)                        (hard: the embeddings)

where e are a sentence's embeddings (unit length: their MSE over the embedding's d dimensions is 2 (1 - cos) / d; MSE
to the teacher's embeddings is also what sentence-transformers' MSELoss distils with) and S = E E^T is the batch's
cosine-similarity matrix with the diagonal left out: each row is a distribution over the other sentences of the
batch, "which of them is most like me". The temperature acts on that distribution. Cosines lie in [-1, 1], so the
sensible temperatures are small (0.05-1): T = 0.1 turns a cosine gap of 0.3 into a 20x probability ratio; at T = 2
all rows are nearly uniform. (Before the labs shared one DistillConfig, the text lab's alpha weighed the MSE; alpha
now weighs the soft term in every family, so an old alpha a is 1 - a here.)

Why T^2: the gradient of the KL term with respect to a similarity is (p_s - p_t) / T. At large T the distributions are
close to uniform, p_s - p_t shrinks as (S_s - S_t) / T, and the gradient as 1 / T^2; multiplying by T^2 keeps it on
one scale whatever T is (Hinton, Vinyals & Dean 2015). There T^2 * KL tends to half the variance of S_s - S_t over
each row: a mean-squared error between the two similarity matrices (after centring). At small T the term only cares
about which sentences are nearest, and T^2 then damps a gradient that would otherwise grow as 1 / T.

Why MSE rather than 1 - cos: the same gradient direction, d / 2 times smaller. Measured on this sample (3-layer
student), 1 - cos (~0.2 untrained) dwarfs T^2 * KL (~0.001-0.002 at T = 0.1-1): alpha = 0.5 and alpha = 0 trained
nearly the same student. With MSE the two parts are of one order and alpha chooses between them (Adam's steps hardly
depend on the loss's overall scale, so alpha = 0 trains as fast either way).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import text as T
from .distillation import DistillConfig, Lesson, LossParts, combine, soft_kl

FRAGMENT = 0.6   # a fragment variant keeps this share of a sentence's words (a contiguous span)
DROP = 0.2       # a word-dropped variant drops each word with this probability (never below half of the words)
MIN_BATCH = 4    # sentences per batch at least: each similarity row needs others to rank
DEFAULTS = DistillConfig(temperature=0.2, alpha=0.5, epochs=3, lr=1e-4, batch_size=32, seed=0, student=0.5)


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


def student_layers(teacher: T.MiniLM, share: float) -> int:
    """Transformer layers of a student keeping `share` of the teacher's (rounded; at least 1)."""
    return max(1, round(share * len(teacher.encoder.layer)))


def share(teacher: T.MiniLM, layers: int) -> float:
    """cfg.student for a student of `layers` layers (the inverse of student_layers)."""
    return layers / len(teacher.encoder.layer)


def student_from_teacher(teacher: T.MiniLM, layers: int) -> T.MiniLM:
    """A shallower encoder: the teacher's embedding tables and the layers `kept_layers` chooses, copied (the teacher
    is not touched). Eval mode, frozen, like slimcore.text.variant."""
    n = len(teacher.encoder.layer)
    keep = kept_layers(n, layers)
    shape = teacher.shape()
    emb = teacher.embeddings
    student = T.MiniLM(emb.word_embeddings.num_embeddings, emb.word_embeddings.embedding_dim,
                       heads=[shape["heads"][i] for i in keep], ffn=[shape["ffn"][i] for i in keep],
                       positions=emb.position_embeddings.num_embeddings, head_dim=teacher.head_dim,
                       eps=teacher.eps, type_vocab=emb.token_type_embeddings.num_embeddings)
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


def student(teacher: T.MiniLM, cfg: DistillConfig) -> T.MiniLM:
    """The encoder family's student for a config: student_layers(teacher, cfg.student) of the teacher's layers."""
    return student_from_teacher(teacher, student_layers(teacher, cfg.student))


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


def distill_loss(student_emb: torch.Tensor, teacher_emb: torch.Tensor, labels: Any, cfg: DistillConfig) -> LossParts:
    """The encoders' loss for one batch: soft = KL(softmax(S_t / T) || softmax(S_s / T)) of the similarity rows,
    averaged over rows; hard = MSE(e_s, e_t). No labels (the teacher's embeddings are the targets)."""
    if student_emb.shape[0] < 3:
        raise ValueError("the similarity term needs at least 3 sentences in a batch")
    hard = F.mse_loss(student_emb, teacher_emb)   # first: autograd sums the embeddings' gradients in this order
    soft = soft_kl(similarity_logits(student_emb), similarity_logits(teacher_emb), cfg.temperature)
    return combine(soft, hard, cfg)


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
    ids = T.encode(texts, split.tokenizer)   # the encoder's own tokenizer (an upload's may differ)
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
    out = None
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        e = model(T.pad([list(ids[i]) for i in idx])).float()
        out = torch.empty(len(ids), e.shape[-1]) if out is None else out
        out[idx] = e
    if out is None:   # no batch ran: the embedding width is unknown
        raise ValueError("no token-id lists to embed")
    return out


def _adamw(lr: float) -> Callable[[nn.Module], torch.optim.Optimizer]:
    """AdamW on the transformer layers only: the embedding tables stay the teacher's (on a few hundred training
    sentences only a few hundred of the word vectors would ever get a gradient, and weight decay would shrink all the
    others); weight decay 0.01 on the matrices, none on biases and LayerNorms."""
    def make(net: nn.Module) -> torch.optim.Optimizer:
        for name, p in net.named_parameters():
            p.requires_grad_(name.startswith("encoder."))
        matrices = [p for n, p in net.named_parameters() if n.startswith("encoder.") and p.dim() == 2]
        others = [p for n, p in net.named_parameters() if n.startswith("encoder.") and p.dim() < 2]
        return torch.optim.AdamW([{"params": matrices, "weight_decay": 0.01},
                                  {"params": others, "weight_decay": 0.0}], lr=lr)
    return make


def lesson(teacher: T.MiniLM, train: T.TextSplit, cfg: DistillConfig, score: Callable[[nn.Module], Any]) -> Lesson:
    """The encoder's training material: the train split's sentences and their variants (training_pool, from
    cfg.seed), embedded once by the teacher; each epoch's batches (groups side by side, seeded); AdamW on the
    transformer layers; `score` (the quick set) after each epoch. No dropout: seeded runs are deterministic."""
    if cfg.batch_size < MIN_BATCH:
        raise ValueError(f"batch size must be at least {MIN_BATCH} sentences for the similarity rows, "
                         f"got {cfg.batch_size}")
    pool = training_pool(train, cfg.seed)
    return Lesson(plan=tuple(tuple(batches(pool, cfg.batch_size, cfg.seed, e)) for e in range(cfg.epochs)),
                  inputs=lambda idx: T.pad([list(pool.ids[i]) for i in idx]), targets=embed_ids(teacher, pool.ids),
                  labels=None, optimizer=_adamw(cfg.lr), score=score, examples=len(pool))
