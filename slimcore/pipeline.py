"""The Deep Compression pipeline (Han, Mao & Dally 2016): prune with fine-tuning -> share weights by k-means with the
centroids fine-tuned -> Huffman-code the streams. Every stage writes a real byte stream that the decoder here turns
back into a working model, so each stage's size is measured (the length of its bytes) and its score (the family's
headline: accuracy, or an encoder's mean cosine to the original) is that of the decoded model. Works on any model
family: it compresses the family's layers (Family.layers) and fine-tunes on what the family trains on
(Family.tuning). Never mutates the model it is given.

Stream format (ours; the decoder needs the architecture and the family, as a state dict does): for each weight of the
family's compressible layers in forward order, the positions of the kept weights as b-bit gaps (a gap symbol
2^b - 1 means "skip that many positions, no weight here", so long runs of zeros cost no stored weights), then the
weights: fp32 values (stage 2), or k-bit indices into a per-layer codebook of 2^k fp32 centroids (stage 3), or the
same symbols Huffman-coded with one canonical code per stream kind (stage 4). Biases and any other tensors (an
encoder's embedding tables too) are stored as fp32.
"""
from __future__ import annotations

import copy
import heapq
import io
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from .families import Family, Tuning, family_of, get
from .metrics import serialized_bytes
from .pruning import GradualConfig, PruneConfig, gradual_prune

MAGIC = b"SLDC1"


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline: its decoded model's test score (the family's headline metric) and the bytes of its
    stream."""

    name: str
    score: float
    bytes: int
    label: str        # "measured": the length of a real byte stream that decodes to the evaluated model
    ratio: float      # original bytes / these bytes
    detail: str


@dataclass(frozen=True)
class PipelineResult:
    stages: tuple[Stage, ...]  # the stages finished (all four unless cancelled)
    model: nn.Module           # the last finished stage's model, decoded from its stream
    streams: dict[str, bytes]  # stage name -> its bytes
    cancelled: bool = False


# Bit packing -------------------------------------------------------------------------------------------------------

def pack_bits(symbols: np.ndarray, bits: int) -> bytes:
    """Fixed-width unsigned symbols packed most significant bit first."""
    symbols = np.asarray(symbols, dtype=np.uint32)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    return np.packbits(((symbols[:, None] >> shifts) & 1).astype(np.uint8).ravel()).tobytes()


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:count * bits].reshape(count, bits)
    return flat.astype(np.uint32) @ (1 << np.arange(bits - 1, -1, -1, dtype=np.uint32))


def huffman_lengths(symbols: np.ndarray, alphabet: int) -> np.ndarray:
    """Code length per symbol of a Huffman code for the symbols' frequencies (0 for symbols that never occur)."""
    counts = np.bincount(symbols, minlength=alphabet)
    used = [int(s) for s in np.flatnonzero(counts)]
    lengths = np.zeros(alphabet, dtype=np.int64)
    if len(used) == 1:
        lengths[used[0]] = 1
        return lengths
    heap: list[tuple[int, int, tuple[int, ...]]] = [(int(counts[s]), i, (s,)) for i, s in enumerate(used)]
    heapq.heapify(heap)
    tie = len(heap)
    while len(heap) > 1:
        a, _, sa = heapq.heappop(heap)
        b, _, sb = heapq.heappop(heap)
        for s in sa + sb:
            lengths[s] += 1
        heapq.heappush(heap, (a + b, tie, sa + sb))
        tie += 1
    return lengths


def canonical_codes(lengths: np.ndarray) -> dict[int, tuple[int, int]]:
    """Canonical Huffman codes {symbol: (code, length)} from code lengths: the decoder needs only the lengths."""
    code, prev, out = 0, 0, {}
    for length, s in sorted((int(n), int(s)) for s, n in enumerate(lengths) if n):
        code <<= length - prev
        out[s] = (code, length)
        code, prev = code + 1, length
    return out


def huffman_encode(symbols: np.ndarray, lengths: np.ndarray) -> bytes:
    codes = canonical_codes(lengths)
    table = {s: np.array([(c >> (n - 1 - i)) & 1 for i in range(n)], dtype=np.uint8) for s, (c, n) in codes.items()}
    if len(symbols) == 0:
        return b""
    return np.packbits(np.concatenate([table[int(s)] for s in symbols])).tobytes()


def huffman_decode(data: bytes, lengths: np.ndarray, count: int) -> np.ndarray:
    decode = {(n, c): s for s, (c, n) in canonical_codes(lengths).items()}
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    out, code, n = [], 0, 0
    for b in bits:
        code, n = (code << 1) | int(b), n + 1
        s = decode.get((n, code))
        if s is not None:
            out.append(s)
            code, n = 0, 0
            if len(out) == count:
                break
    return np.array(out, dtype=np.int64)


# Positions of the kept weights as gaps -----------------------------------------------------------------------------

def encode_positions(mask: np.ndarray, bits: int) -> np.ndarray:
    """Gap symbols for the kept positions of a flat mask: s < M: skip s positions then a weight; M = 2^b - 1: skip M
    positions, no weight."""
    skip = (1 << bits) - 1
    out, prev = [], -1
    for idx in np.flatnonzero(mask):
        gap = int(idx) - prev - 1
        while gap >= skip:
            out.append(skip)
            gap -= skip
        out.append(gap)
        prev = int(idx)
    return np.array(out, dtype=np.int64)


def decode_positions(symbols: np.ndarray, bits: int, size: int) -> np.ndarray:
    skip = (1 << bits) - 1
    mask, pos = np.zeros(size, dtype=bool), 0
    for s in symbols:
        if s == skip:
            pos += skip
        else:
            pos += int(s)
            if pos >= size:
                raise ValueError("a position in the stream lies outside its layer: the stream is damaged")
            mask[pos] = True
            pos += 1
    return mask


# Streams -----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Layer:
    """One weight layer ready to encode: kept positions, and either fp32 values or codebook indices."""

    mask: np.ndarray                  # flat bool
    values: np.ndarray | None         # fp32 kept values (stage 2)
    codebook: np.ndarray | None       # fp32 centroids (stage 3, 4)
    indices: np.ndarray | None        # index per kept value
    bits: int                         # index width


def _family(family: Family | None) -> Family:
    return family if family is not None else get("classifier")


def other_tensors(model: nn.Module, family: Family | None = None) -> dict[str, torch.Tensor]:
    """Every state-dict tensor outside the family's compressible layers' weights (biases, norms, an encoder's
    embedding tables), in state-dict order: the streams store them as fp32."""
    names = {f"{n}.weight" for n in _family(family).layers(model)}
    return {k: v for k, v in model.state_dict().items() if k not in names}


def encode(model: nn.Module, layers: list[Layer], position_bits: int, huffman: bool = False,
           family: Family | None = None) -> bytes:
    """A byte stream of a compressed model: see the module docstring for the layout. `layers` are the family's
    (default: classifiers), in Family.layers order."""
    shared = layers[0].codebook is not None
    if huffman and not shared:
        raise ValueError("Huffman coding here codes codebook indices: share weights first")
    buf = io.BytesIO()
    buf.write(MAGIC + struct.pack("<BB??", len(layers), position_bits, shared, huffman))
    positions = [encode_positions(L.mask, position_bits) for L in layers]
    if huffman:
        idx_bits = max(L.bits for L in layers)
        pos_len = huffman_lengths(np.concatenate(positions), 1 << position_bits)
        idx_len = huffman_lengths(np.concatenate([L.indices for L in layers]), 1 << idx_bits)
        buf.write(struct.pack("<B", idx_bits) + pos_len.astype(np.uint8).tobytes() + idx_len.astype(np.uint8).tobytes())
    for L, pos in zip(layers, positions):
        p = huffman_encode(pos, pos_len) if huffman else pack_bits(pos, position_bits)
        buf.write(struct.pack("<II", len(pos), len(p)) + p)
        if not shared:
            if L.values is None:
                raise ValueError("a layer without fp32 values: give every layer values (stage 2), or every layer a "
                                 "codebook and indices (stage 3, 4)")
            buf.write(L.values.astype("<f4").tobytes())
        else:
            if L.codebook is None or L.indices is None:
                raise ValueError("a layer without a codebook and indices: give every layer values (stage 2), or every "
                                 "layer a codebook and indices (stage 3, 4)")
            w = huffman_encode(L.indices, idx_len) if huffman else pack_bits(L.indices, L.bits)
            buf.write(struct.pack("<BI", L.bits, len(w)) + L.codebook.astype("<f4").tobytes() + w)
    for t in other_tensors(model, family).values():
        buf.write(t.detach().numpy().astype("<f4").tobytes())
    body = buf.getvalue()
    return body + struct.pack("<I", zlib.crc32(body))  # a checksum, so damage is found rather than decoded


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.view, self.off = memoryview(data), 0

    def take(self, n: int) -> bytes:
        if self.off + n > len(self.view):
            raise ValueError("the stream is truncated")
        out = bytes(self.view[self.off:self.off + n])
        self.off += n
        return out

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def decode(data: bytes, architecture: nn.Module, family: Family | None = None) -> nn.Module:
    """The model a stream holds, on a copy of its architecture (whose own values are not used); `family` (default:
    classifiers) says which layers the stream compressed."""
    if len(data) < len(MAGIC) + 4 or not data.startswith(MAGIC):
        raise ValueError("not a SlimLab Deep Compression stream")
    data, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(data) != crc:
        raise ValueError("the stream is damaged (checksum mismatch)")
    r = _Reader(data)
    r.take(len(MAGIC))
    n, position_bits, shared, huffman = r.unpack("<BB??")
    if huffman:
        (idx_bits,) = r.unpack("<B")
        pos_len = np.frombuffer(r.take(1 << position_bits), dtype=np.uint8).astype(np.int64)
        idx_len = np.frombuffer(r.take(1 << idx_bits), dtype=np.uint8).astype(np.int64)
    model = copy.deepcopy(architecture)
    state = model.state_dict()
    names = [f"{k}.weight" for k in _family(family).layers(model)]
    if len(names) != n:
        raise ValueError(f"the stream holds {n} weight layers, the architecture {len(names)}")
    for name in names:
        size = state[name].numel()
        count, nbytes = r.unpack("<II")
        raw = r.take(nbytes)
        pos = huffman_decode(raw, pos_len, count) if huffman else unpack_bits(raw, position_bits, count)
        mask = decode_positions(pos, position_bits, size)
        kept = int(mask.sum())
        flat = np.zeros(size, dtype=np.float32)
        if not shared:
            flat[mask] = np.frombuffer(r.take(4 * kept), dtype="<f4")
        else:
            bits, wbytes = r.unpack("<BI")
            codebook = np.frombuffer(r.take(4 * (1 << bits)), dtype="<f4")
            raw = r.take(wbytes)
            flat[mask] = codebook[huffman_decode(raw, idx_len, kept) if huffman else unpack_bits(raw, bits, kept)]
        state[name] = torch.from_numpy(flat.reshape(tuple(state[name].shape)))
    for k in [k for k in state if k not in names]:
        t = state[k]
        state[k] = torch.from_numpy(np.frombuffer(r.take(4 * t.numel()), dtype="<f4").reshape(tuple(t.shape)).copy())
    if r.off != len(data):
        raise ValueError(f"stream length mismatch: read {r.off} of {len(data)} bytes")
    model.load_state_dict(state)
    return model.eval()


# Weight sharing ----------------------------------------------------------------------------------------------------

def kmeans_1d(values: np.ndarray, k: int, iterations: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Centroids and assignments of 1-D k-means with linear initialisation over [min, max] (the initialisation Deep
    Compression found best: it keeps centroids for the rare large weights)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.zeros(k), np.zeros(0, dtype=np.int64)
    centroids = np.linspace(values.min(), values.max(), k)
    for _ in range(iterations):
        assign = np.abs(values[:, None] - centroids[None, :]).argmin(1)
        sums = np.bincount(assign, weights=values, minlength=k)
        counts = np.bincount(assign, minlength=k)
        moved = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.allclose(moved, centroids):
            break
        centroids = moved
    return centroids, np.abs(values[:, None] - centroids[None, :]).argmin(1)


def _finetune_codebooks(model: nn.Module, masks: dict[str, torch.Tensor], codebooks: dict[str, torch.Tensor],
                        assign: dict[str, torch.Tensor], tuning: Tuning, epochs: int, lr: float, seed: int,
                        batch_size: int, should_stop: Callable[[], bool] | None) -> dict[str, torch.Tensor]:
    """Train the centroids (each weight's gradient summed into its centroid, by autograd through the gather) and the
    other parameters the family tunes (Family.tuning: a classifier's biases; an encoder's biases and norms), with the
    assignments and the pruning masks fixed. Returns the new codebooks; the other parameters are updated in place on
    `model`, which is the pipeline's own copy."""
    books = {n: c.clone().requires_grad_(True) for n, c in codebooks.items()}
    tuned = {id(p) for p in tuning.parameters(model)}
    others = {k: v for k, v in model.named_parameters()
              if id(v) in tuned and not any(k == f"{n}.weight" for n in books)}
    for v in others.values():
        v.requires_grad_(True)
    opt = torch.optim.Adam(list(books.values()) + list(others.values()), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    buffers = dict(model.named_buffers())
    for _ in range(epochs):
        order = torch.randperm(tuning.examples, generator=gen)
        for i in range(0, len(order), batch_size):
            if should_stop is not None and should_stop():
                return {n: b.detach() for n, b in books.items()}
            params = dict(others) | {f"{n}.weight": books[n][assign[n]] * masks[n] for n in books}
            # tuning.loss calls the forward function at once, in this iteration: `params` is this batch's
            loss = tuning.loss(lambda *x: functional_call(model, (params, buffers), x),  # noqa: B023
                               order[i:i + batch_size])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch: Tensor.backward is not annotated
            opt.step()
    return {n: b.detach() for n, b in books.items()}


def _unshared(model: nn.Module, family: Family, stream_bytes: int) -> str:
    """What the stream keeps at fp32 outside the compressed layers, when that includes matrices (an encoder's
    embedding tables): their names and bytes, and their share of the stream."""
    tables = {k: v.numel() * 4 for k, v in other_tensors(model, family).items() if v.dim() >= 2}
    if not tables:
        return ""
    total = sum(tables.values())
    return (f"; {', '.join(tables)} stay fp32 ({total / 2**20:,.1f} MiB, {total / stream_bytes:.0%} of the stream): "
            "only the family's compressible layers are pruned and shared")


def deep_compression(sample: Any, prune_amount: float = 0.92, bits: int = 4, conv_bits: int = 8,
                     position_bits: int = 4, steps: int = 6, finetune_epochs: int = 4, cluster_epochs: int = 4,
                     lr: float = 1e-3, seed: int = 0, batch_size: int = 64,
                     on_stage: Callable[[Stage], None] | None = None,
                     on_step: Callable[[Any, float], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> PipelineResult:
    """Prune (global L1, gradual with fine-tuning) -> share weights (k-means, 2^bits centroids per Linear layer and
    2^conv_bits per conv layer, centroids fine-tuned) -> Huffman-code positions and indices, on a copy of a sample's
    model of any family (its layers, its tuning, its test scorer). Each stage's score is that of the model decoded
    from its own bytes. `on_stage` is called after each stage, `on_step(step, fraction)` after each pruning step."""
    if not 0 < prune_amount < 1:
        raise ValueError(f"prune amount must be in (0, 1), got {prune_amount}")
    if not (1 <= bits <= 8 and 1 <= conv_bits <= 8 and 2 <= position_bits <= 8):
        raise ValueError("index widths must be 1..8 bits and gaps 2..8 bits")
    if steps < 1 or min(finetune_epochs, cluster_epochs) < 0:
        raise ValueError("need at least one pruning step and no negative epoch counts")
    fam = family_of(sample)
    model = sample.model
    test = fam.scorer(sample, "test")
    tuning = fam.tuning(sample)
    stages: list[Stage] = []
    streams: dict[str, bytes] = {}
    original = serialized_bytes(model)

    def done(name: str, stream: bytes | None, decoded: nn.Module, detail: str, t0: float) -> None:
        size = original if stream is None else len(stream)
        stage = Stage(name, test(decoded).value, size, "measured", original / size,
                      f"{detail}; {time.perf_counter() - t0:.1f} s")
        if stream is not None:
            streams[name] = stream
        stages.append(stage)
        if on_stage is not None:
            on_stage(stage)

    t0 = time.perf_counter()
    raw = sum(v.numel() * 4 for v in model.state_dict().values())
    done("original (fp32)", None, model, f"torch.save of the state dict (the fp32 tensors alone: {raw:,} B)", t0)

    t0 = time.perf_counter()
    run = gradual_prune(sample, GradualConfig(PruneConfig(prune_amount, "l1", "global"), steps, finetune_epochs,
                                              lr=lr, batch_size=batch_size, seed=seed),
                        on_step=on_step, should_stop=should_stop, tuning=tuning,
                        scorers=(test, fam.scorer(sample, "validation")))
    if run.cancelled:
        return PipelineResult(tuple(stages), model, streams, True)
    net, masks = run.model, {n: m for n, m in run.masks.items()}
    layers = fam.layers(net)
    weight = {n: cast(torch.Tensor, m.weight) for n, m in layers.items()}   # the family's compressible layers'
    pruned = [Layer(masks[n].numpy().ravel(), weight[n].detach().numpy().ravel()[masks[n].numpy().ravel()],
                    None, None, 32) for n in layers]
    stream = encode(net, pruned, position_bits, family=fam)
    done("pruned + fine-tuned", stream, decode(stream, net, fam),
         f"{run.steps[-1].sparsity:.1%} of weights removed (global L1, {steps} steps, {finetune_epochs} epochs each); "
         f"kept weights fp32 with {position_bits}-bit gaps" + _unshared(net, fam, len(stream)), t0)

    t0 = time.perf_counter()
    books, assign, widths = {}, {}, {}
    for n, m in layers.items():
        widths[n] = bits if isinstance(m, nn.Linear) else conv_bits
        kept = weight[n].detach().numpy().ravel()[masks[n].numpy().ravel()]
        c, a = kmeans_1d(kept, 1 << widths[n])
        full = np.zeros(weight[n].numel(), dtype=np.int64)
        full[masks[n].numpy().ravel()] = a
        books[n] = torch.tensor(c, dtype=torch.float32)
        assign[n] = torch.from_numpy(full).view(weight[n].shape)
    books = _finetune_codebooks(net, {n: masks[n].float() for n in layers}, books, assign, tuning, cluster_epochs,
                                lr, seed, batch_size, should_stop)
    net.requires_grad_(False)
    if should_stop is not None and should_stop():
        return PipelineResult(tuple(stages), decode(streams["pruned + fine-tuned"], net, fam), streams, True)
    shared = [Layer(masks[n].numpy().ravel(), None, books[n].numpy(),
                    assign[n].numpy().ravel()[masks[n].numpy().ravel()], widths[n]) for n in layers]
    stream = encode(net, shared, position_bits, family=fam)
    done("weight sharing", stream, decode(stream, net, fam),
         f"k-means: {bits}-bit indices for Linear, {conv_bits}-bit for conv, centroids fine-tuned "
         f"{cluster_epochs} epochs" + _unshared(net, fam, len(stream)), t0)
    t0 = time.perf_counter()
    stream = encode(net, shared, position_bits, huffman=True, family=fam)
    final = decode(stream, net, fam)
    done("Huffman coded", stream, final, "canonical Huffman codes for the gaps and the indices"
         + _unshared(net, fam, len(stream)), t0)
    return PipelineResult(tuple(stages), final, streams, False)
