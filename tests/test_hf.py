"""Hugging Face folders of BERT encoders (slimcore.hf): the shipped MiniLM folder, zipped, gives exactly minilm's
figures; a smaller BERT of other sizes runs through the encoder family and head pruning; hostile folders are refused
with one line, before anything is extracted or allocated."""
from __future__ import annotations

import io
import json
import struct
import zipfile
from functools import lru_cache

import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import slimcore
from slimcore import hf as H
from slimcore import int8 as I8
from slimcore import quantization as Q
from slimcore import text as T
from slimcore import text_distill as TD
from slimcore import text_prune as TP
from slimcore.families import family_of
from tests.conftest import load_text

LIMIT = 200 * 10**6     # the upload limit the dashboard uses (decimal MB)
SMALL_LIMIT = 50 * 10**6


def zip_of(files: dict[str, bytes], folder: str = "", method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in files.items():
            z.writestr(folder + name, data)
    return buf.getvalue()


# ------------------------------------------------------------------------------------- the shipped MiniLM folder

@pytest.fixture(scope="module")
def minilm() -> T.TextSample:
    return load_text()


@pytest.fixture(scope="module")
def read() -> tuple[dict, dict[str, torch.Tensor]]:
    """The installed package's model folder, zipped one folder deep (as a user zips a downloaded folder), read."""
    d = T.model_dir()
    files = {str(f.relative_to(d)): f.read_bytes() for f in sorted(d.rglob("*")) if f.is_file()}
    return H.read_folder(zip_of(files, "all-MiniLM-L6-v2/"), LIMIT)


@pytest.fixture(scope="module")
def up(read) -> T.TextSample:
    doc, tensors = read
    return H.sample(doc, tensors, "my-minilm", {"file_bytes": 1})


def test_the_description_is_plain_json_with_the_folders_facts(read):
    doc, tensors = read
    assert json.loads(json.dumps(doc)) == doc
    assert doc["kind"] == "hf-encoder" and doc["pooling"] == "mean" and doc["normalize"] is True
    assert doc["name"] == "all-MiniLM-L6-v2" and doc["max_tokens"] == T.MAX_TOKENS and doc["dtype"] == "F32"
    assert doc["config"] == {"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
                             "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2,
                             "layer_norm_eps": 1e-12, "hidden_act": "gelu", "model_type": "bert",
                             "architectures": ["BertModel"]}
    assert doc["parameters"] == 22_565_376 and doc["notes"] == []
    assert H.check(doc) == doc    # checking again is idempotent (the tokenizer text included)
    assert all(v.dtype == torch.float32 for v in tensors.values())
    assert set(tensors) == set(H.expected_shapes(doc["config"]))


def test_the_minilm_folder_gives_minilms_token_ids_weights_and_card(up, minilm):
    for which in ("train", "test"):
        a, b = getattr(up.data, which), getattr(minilm.data, which)
        assert a.ids == b.ids and a.texts == b.texts and a.pairs == b.pairs and a.groups == b.groups
    assert up.data.quick == minilm.data.quick and up.data.quick_set.ids == minilm.data.quick_set.ids
    ours, theirs = up.model.state_dict(), minilm.model.state_dict()
    assert list(ours) == list(theirs) and all(torch.equal(ours[k], v) for k, v in theirs.items())
    few = minilm.data.quick_set.subset(40)
    assert torch.equal(T.embed(up.model, up.data.quick_set.subset(40)), T.embed(minilm.model, few))
    assert up.card["architecture"] == minilm.card["architecture"] and up.card["parameters"] == minilm.card["parameters"]
    assert up.card["sentences"] == minilm.card["sentences"] and up.card["model"] == "all-MiniLM-L6-v2"
    assert up.card["format"] == "Hugging Face folder" and up.card["source"] == "upload" and up.card["file_bytes"] == 1
    assert up.name == "my-minilm" and up.kind == "text" and family_of(up).name == "encoder"


def _same_score(a, b) -> None:
    assert a.value == b.value and a.examples == b.examples and a.detail == b.detail


@pytest.mark.slow   # embeds the 496 test sentences with both encoders (4-17 s each on 2 cores, by load)
def test_the_test_split_embeddings_and_family_scores_are_minilms_bit_for_bit(up, minilm):
    assert torch.equal(T.embed(up.model, up.test), T.embed(minilm.model, minilm.test))
    fam = family_of(up)
    cfg = TP.config(0.25, "heads")
    thin_up, thin_mini = TP.prune_text(up.model, cfg), TP.prune_text(minilm.model, cfg)
    assert thin_up.shape() == thin_mini.shape() and sum(thin_up.shape()["heads"]) == 6 * 9
    for k, v in thin_mini.state_dict().items():
        assert torch.equal(thin_up.state_dict()[k], v), k
    _same_score(fam.scorer(up)(thin_up), family_of(minilm).scorer(minilm)(thin_mini))


@pytest.mark.slow   # fake quantization and a torch.ao int8 build of both, scored on the quick set
def test_quantization_labs_give_identical_figures_on_both(up, minilm):
    fam = family_of(up)
    quick_up, quick_mini = fam.scorer(up, "quick"), fam.scorer(minilm, "quick")
    _same_score(quick_up(up.model), quick_mini(minilm.model))
    fq_up, fq_mini = (Q.quantize(m, bits=4, per_channel=True, layers=T.linear_layers(m))
                      for m in (up.model, minilm.model))
    _same_score(quick_up(fq_up), quick_mini(fq_mini))
    variant = next(k for k, v in I8.variants(up).items() if v.engine == "torch" and v.per_channel)
    q_up, q_mini = I8.build(up, variant), I8.build(minilm, variant)
    x = fam.example(up)
    assert torch.equal(x, fam.example(minilm)) and torch.equal(q_up.model(x), q_mini.model(x))
    _same_score(quick_up(q_up.model), quick_mini(q_mini.model))


# ---------------------------------------------------------------------------------------- a smaller BERT encoder

SMALL = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 30522, "max_position_embeddings": 128,
         "type_vocab_size": 2, "layer_norm_eps": 1e-7, "hidden_act": "gelu", "pad_token_id": 0,
         "position_embedding_type": "absolute", "hidden_dropout_prob": 0.1}


@lru_cache(maxsize=1)
def _small_state() -> dict[str, torch.Tensor]:
    """Seeded random weights of a 2-layer BERT of 4 heads of 16 dimensions, as a transformers checkpoint names them
    (`bert.` prefix, a pooler, the MLM head's bias, position_ids)."""
    g = torch.Generator().manual_seed(0)
    shapes = H.expected_shapes(H.check_config(SMALL))
    state = {"bert." + k: (1.0 if k.endswith("LayerNorm.weight") else 0.0) + 0.1 * torch.randn(s, generator=g)
             for k, s in shapes.items()}
    state |= {"bert.pooler.dense.weight": torch.randn(64, 64, generator=g), "bert.pooler.dense.bias": torch.zeros(64),
              "cls.predictions.bias": torch.zeros(30522), "bert.embeddings.position_ids": torch.arange(128)[None]}
    return state


def small_files(config: dict | None = None, state: dict | None = None, **extra: bytes) -> dict[str, bytes]:
    tok = (T.model_dir() / "tokenizer.json").read_bytes()
    files = {"config.json": json.dumps(SMALL if config is None else config).encode(),
             "model.safetensors": st_save(_small_state() if state is None else state), "tokenizer.json": tok,
             "modules.json": json.dumps([{"idx": 0, "name": "0", "path": "",
                                          "type": "sentence_transformers.models.Transformer"},
                                         {"idx": 1, "name": "1", "path": "1_Pooling",
                                          "type": "sentence_transformers.models.Pooling"}]).encode(),
             "1_Pooling/config.json": json.dumps({"word_embedding_dimension": 64, "pooling_mode_mean_tokens": True,
                                                  "pooling_mode_cls_token": False}).encode()}
    return files | extra


@pytest.fixture(scope="module")
def small() -> T.TextSample:
    doc, tensors = H.read_folder(zip_of(small_files(pytorch_model_bin=b"never read")), SMALL_LIMIT)
    assert doc["name"] is None and doc["normalize"] is False and doc["max_tokens"] == 128
    assert doc["config"]["architectures"] == ["BertForMaskedLM"] and doc["config"]["layer_norm_eps"] == 1e-7
    return H.sample(doc, tensors, "small-bert", {})


def test_the_expected_tensors_are_minilms_state_dict():
    cfg = H.check_config(SMALL)
    model = T.MiniLM(30522, 64, [4, 4], [128, 128], 128, head_dim=16)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == H.expected_shapes(cfg)
    assert H.parameters(cfg) == sum(p.numel() for p in model.parameters()) == TP.thin_parameters(
        model.shape(), vocab=30522, hidden=64, positions=128, head_dim=16)


def test_a_smaller_bert_runs_through_the_family_and_head_removal(small):
    m = small.model
    assert m.head_dim == 16 and m.shape() == {"heads": [4, 4], "ffn": [128, 128]}
    assert m.embeddings.LayerNorm.eps == 1e-7 and small.card["architecture"].endswith("hidden 64")
    assert torch.equal(m.encoder.layer[1].intermediate.dense.weight,
                       _small_state()["bert.encoder.layer.1.intermediate.dense.weight"])
    fam = family_of(small)
    score = fam.scorer(small, "quick")
    assert score(m).value == pytest.approx(1.0)
    keep = fam.prune_masks(m, TP.config(0.5, "heads"))
    thin, _ = fam.remove_units(m, "heads", keep, fam.example(small))
    assert thin.head_dim == 16 and thin.shape()["heads"] == [2, 2]
    assert thin.encoder.layer[0].attention.self.query.weight.shape == (32, 64)
    assert thin.encoder.layer[0].attention.output.dense.weight.shape == (64, 32)
    # Removing the heads equals switching their attention-output columns off in the dense model.
    dense = T.variant(m, {f"encoder.layer.{i}.attention.output.dense.weight":
                          m.encoder.layer[i].attention.output.dense.weight
                          * keep[f"encoder.layer.{i}.attention.output.dense"]
                          for i in range(2)})
    x = fam.example(small)
    assert torch.allclose(thin(x), dense(x), atol=1e-5)
    r = score(thin)
    assert 0 < r.value < 1 and r.examples == small.data.quick
    assert TP.thin_parameters(thin.shape(), vocab=30522, hidden=64, positions=128, head_dim=16) == \
        sum(p.numel() for p in thin.parameters())
    student = TD.student_from_teacher(m, 1)
    assert student.head_dim == 16 and student.embeddings.LayerNorm.eps == 1e-7 and student(x).shape == (len(x), 64)


def test_students_train_on_sentences_tokenized_by_the_uploads_own_tokenizer():
    files = small_files(**{"sentence_bert_config.json": json.dumps({"max_seq_length": 12}).encode()})
    doc, tensors = H.read_folder(zip_of(files), SMALL_LIMIT)
    s = H.sample(doc, tensors, "short", {})
    assert doc["max_tokens"] == 12 and max(len(i) for i in s.data.train.ids) == 12
    assert s.data.train.tokenizer == s.data.test.subset(5).tokenizer == doc["tokenizer"]
    pool = TD.training_pool(s.data.train, 0)
    assert max(len(i) for i in pool.ids) <= 12
    first = [i for i, k in enumerate(pool.kind) if k == "sentence"]
    assert [pool.ids[i] for i in first] == list(s.data.train.ids)


def test_the_description_and_tensors_survive_the_trip_from_a_reading_process(small):
    doc, tensors = H.read_folder(zip_of(small_files()), SMALL_LIMIT)
    doc2, tensors2 = json.loads(json.dumps(doc)), st_load(st_save(tensors))   # as slimcore.sandbox hands them over
    x = family_of(small).example(small)
    assert torch.equal(H.encoder(doc2, tensors2)(x), small.model(x))


# -------------------------------------------------------------------------------------------------------- refusals

def refused(data: bytes, match: str, limit: int = SMALL_LIMIT) -> None:
    with pytest.raises(H.FolderError, match=match) as e:
        H.read_folder(data, limit)
    assert "\n" not in str(e.value)


def _config(**changes) -> dict:
    return {k: v for k, v in (SMALL | changes).items() if v is not None}


def _state(**changes) -> dict:
    return {k: v for k, v in (_small_state() | changes).items() if v is not None}


def _tokenizer(**changes) -> bytes:
    t = json.loads((T.model_dir() / "tokenizer.json").read_text())
    return json.dumps(t | changes).encode()


PADDING = b"\0" * len(st_save(_small_state()))   # as long as the real weights: the size check passes, the header fails


def _header_bomb() -> bytes:
    return struct.pack("<Q", 2**40) + b"{}"


def _pooling(**modes) -> bytes:
    return json.dumps({"word_embedding_dimension": 64, "pooling_mode_mean_tokens": False} | modes).encode()


HOSTILE = {
    "remote code (auto_map)": (dict(config=_config(auto_map={"AutoModel": "modeling.MyBert"})), "remote code"),
    "remote code (trust_remote_code)": (dict(config=_config(trust_remote_code=True)), "remote code"),
    "GPT-2": (dict(config=_config(model_type="gpt2", architectures=["GPT2Model"])), "accepted: bert"),
    "RoBERTa": (dict(config=_config(model_type="roberta", architectures=["RobertaModel"])), "RoBERTa"),
    "a non-BERT architecture": (dict(config=_config(architectures=["GPT2LMHeadModel"])), "BertModel"),
    "no model_type": (dict(config=_config(model_type=None)), "no model_type"),
    "absurd hidden size": (dict(config=_config(hidden_size=10**9)), "hidden_size"),
    "negative vocabulary": (dict(config=_config(vocab_size=-1)), "vocab_size"),
    "layers as text": (dict(config=_config(num_hidden_layers="2")), "whole number"),
    "heads not dividing": (dict(config=_config(num_attention_heads=5)), "multiple"),
    "eps as a bool": (dict(config=_config(layer_norm_eps=True)), "layer_norm_eps"),
    "ReLU": (dict(config=_config(hidden_act="relu")), "accepted: gelu"),
    "tanh GELU": (dict(config=_config(hidden_act="gelu_new")), "accepted: gelu"),
    "relative positions": (dict(config=_config(position_embedding_type="relative_key")), "absolute"),
    "a decoder": (dict(config=_config(is_decoder=True)), "decoder"),
    "pad id 1 in the config": (dict(config=_config(pad_token_id=1)), "pads with id 0"),
    "config not JSON": ({"config.json": b"{'hidden_size': 64"}, "config.json is not valid JSON"),
    "config a list": ({"config.json": b"[1, 2]"}, "JSON object"),
    "a wrong shape": (dict(state=_state(**{"bert.encoder.layer.1.intermediate.dense.weight": torch.zeros(64, 64)})),
                      r"encoder\.layer\.1\.intermediate\.dense\.weight \(64, 64\)"),
    "a missing tensor": (dict(state=_state(**{"bert.encoder.layer.0.attention.self.key.bias": None})),
                         r"lacks 1 tensor.*attention\.self\.key\.bias"),
    "an unknown tensor": (dict(state=_state(**{"bert.encoder.layer.2.output.dense.weight": torch.zeros(64, 128)})),
                          r"does not have: encoder\.layer\.2"),
    "NaN weights": (dict(state=_state(**{"bert.embeddings.LayerNorm.bias": torch.full((64,), float("nan"))})),
                    r"NaN or infinite.*embeddings\.LayerNorm\.bias"),
    "infinite weights": (dict(state=_state(**{"bert.encoder.layer.1.output.dense.bias":
                                               torch.tensor([float("inf")] + [0.0] * 63)})), "NaN or infinite"),
    "integer weights": (dict(state=_state(**{"bert.embeddings.LayerNorm.bias": torch.zeros(64, dtype=torch.int32)})),
                        "accepted: F32"),
    "a corrupt safetensors header": ({"model.safetensors": _header_bomb() + PADDING}, "corrupt header"),
    "a safetensors header that is not JSON": ({"model.safetensors": struct.pack("<Q", 9) + b"not json!" + PADDING},
                                              "corrupt header"),
    "a truncated safetensors file": ({"model.safetensors": st_save(_small_state())[:-1000]}, "cannot be read"),
    "a tokenizer that is not JSON": ({"tokenizer.json": b"{not json"}, "tokenizer.json is not a tokenizer"),
    "JSON that is not a tokenizer": ({"tokenizer.json": b'{"version": "1.0", "model": 7}'},
                                     "tokenizer.json is not a tokenizer"),
    "a tokenizer padding with 1": ({"tokenizer.json": _tokenizer(padding={
        "strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None, "pad_id": 1, "pad_type_id": 0,
        "pad_token": "[unused0]"})}, "pads with id 1"),
    "CLS pooling": ({"1_Pooling/config.json": _pooling(pooling_mode_cls_token=True)}, "pooling by cls_token"),
    "max pooling with the mean": ({"1_Pooling/config.json": _pooling(pooling_mode_mean_tokens=True,
                                                                     pooling_mode_max_tokens=True)}, "pooling by"),
    "a Dense module": ({"modules.json": json.dumps([{"path": "", "type": "sentence_transformers.models.Transformer"},
                                                    {"path": "1_Pooling",
                                                     "type": "sentence_transformers.models.Pooling"},
                                                    {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]
                                                   ).encode()}, "Dense"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_or_unsupported_folder_is_refused_in_one_line(case):
    change, match = HOSTILE[case]
    if "config" in change or "state" in change:
        files = small_files(change.get("config"), change.get("state"))
    else:
        files = small_files() | change
    refused(zip_of(files), match)


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "tokenizer.json"])
def test_a_folder_missing_a_file_is_refused_by_its_name(missing):
    files = {k: v for k, v in small_files().items() if k != missing}
    refused(zip_of(files), missing.replace(".", r"\."))
    refused(zip_of(files, "folder/"), missing.replace(".", r"\."))


def test_a_pickle_checkpoint_is_not_read_instead_of_safetensors():
    files = {k: v for k, v in small_files().items() if k != "model.safetensors"} | {"pytorch_model.bin": b"x"}
    refused(zip_of(files), "pickle")


def test_absurd_sizes_are_refused_before_any_weight_is_read_or_allocated(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("reached an allocation")
    monkeypatch.setattr(T, "MiniLM", never)
    monkeypatch.setattr("safetensors.torch.load", never)
    refused(zip_of(small_files(_config(hidden_size=10**9))), "hidden_size")
    big = _config(hidden_size=4096, num_attention_heads=64, num_hidden_layers=48, intermediate_size=32768)
    refused(zip_of(small_files(big)), "describes .* parameters")


def test_zip_level_attacks_are_refused_before_extraction():
    refused(b"definitely not a zip", "not a zip")
    refused(b"", "not a zip")
    base = small_files()
    refused(zip_of(base | {"../evil.txt": b"x"}), "outside its folder")
    refused(zip_of(base | {"/etc/evil": b"x"}), "outside its folder")
    refused(zip_of(base | {"sub\\..\\..\\evil": b"x"}), "outside its folder")
    two = io.BytesIO()
    with zipfile.ZipFile(two, "w") as z:
        for folder in ("a/", "b/"):
            for k, v in base.items():
                z.writestr(folder + k, v)
    refused(two.getvalue(), "several model folders")
    many = zip_of(base | {f"extra/{i}.txt": b"" for i in range(H.MAX_ENTRIES)})
    refused(many, "entries")
    # A bomb: 60 MB of zeros compress to about 60 KB; its declared size is refused before a byte is inflated.
    bomb = zip_of(base | {"model.safetensors": bytes(60 * 10**6)}, method=zipfile.ZIP_DEFLATED)
    assert len(bomb) < 2 * 10**6
    refused(bomb, "refused before extracting")
    # The limit counts every file read: a folder just over it is refused too.
    size = sum(len(v) for k, v in base.items() if k in ("config.json", "model.safetensors", "tokenizer.json"))
    refused(zip_of(base), "refused before extracting|limit", limit=size - 1)


def test_a_zip_whose_declared_size_lies_is_refused():
    data = bytearray(zip_of(small_files(), method=zipfile.ZIP_DEFLATED))
    z = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = z.getinfo("config.json")
    at = data.find(b"config.json", z.start_dir) - 46    # its entry in the central directory (46 bytes, then the name)
    assert data[at:at + 4] == b"PK\x01\x02"
    data[at + 24:at + 28] = struct.pack("<I", info.file_size - 10)                  # its uncompressed size, smaller
    refused(bytes(data), "config.json")


def test_a_folder_one_level_deep_and_unrelated_files_are_accepted():
    extra = {"onnx/model.onnx": b"\0" * 10, "__MACOSX/._config.json": b"x",
             "README.md": b"---\nx: 1\n---\n# Tiny BERT\n"}
    doc, _ = H.read_folder(zip_of(small_files(**extra), "tiny-bert/"), SMALL_LIMIT)
    assert doc["name"] == "Tiny BERT"
    doc, _ = H.read_folder(zip_of(small_files(), "tiny-bert/"), SMALL_LIMIT)
    assert doc["name"] == "tiny-bert"


def test_the_server_checks_the_description_and_tensors_again():
    doc, tensors = H.read_folder(zip_of(small_files()), SMALL_LIMIT)
    with pytest.raises(H.FolderError, match="wrong shape"):
        H.encoder(doc | {"config": doc["config"] | {"intermediate_size": 256}}, tensors)
    with pytest.raises(H.FolderError, match="remote code"):
        H.encoder(doc | {"config": doc["config"] | {"auto_map": {}}}, tensors)
    with pytest.raises(H.FolderError, match="kind"):
        H.encoder(doc | {"kind": "torchscript"}, tensors)
    with pytest.raises(H.FolderError, match="tokenizer.json"):
        H.sample(doc | {"tokenizer": "{}"}, tensors, "x", {})
    with pytest.raises(H.FolderError, match="lacks"):
        H.encoder(doc, {k: v for k, v in tensors.items() if "layer.1." not in k})
    with pytest.raises(H.FolderError, match="NaN"):
        H.encoder(doc, tensors | {"embeddings.LayerNorm.weight": torch.full((64,), float("nan"))})
    assert all(not v.isnan().any() for v in tensors.values())   # the given tensors are not changed


@pytest.fixture(scope="module")
def zipped() -> bytes:
    d = T.model_dir()
    return zip_of({str(f.relative_to(d)): f.read_bytes() for f in sorted(d.rglob("*")) if f.is_file()},
                  "all-MiniLM-L6-v2/")


def test_a_folder_uploaded_through_the_reading_process_is_minilm_on_every_lab(zipped, minilm):
    """The zip uploaded as a user uploads it (slimcore.upload.load_upload: read in the confined process, rebuilt
    here): the same encoder, and the same figures from the pruning, quantization and int8 labs' backends."""
    from slimcore import pruning as P
    from slimcore import upload as U

    up = U.load_upload(zipped, "all-MiniLM-L6-v2.zip")
    assert up.kind == "text" and up.card["source"] == "upload" and up.card["format"] == H.FORMAT
    assert up.model.state_dict().keys() == minilm.model.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(up.model.state_dict().values(), minilm.model.state_dict().values()))
    assert [list(i) for i in up.data.quick_set.ids] == [list(i) for i in minilm.data.quick_set.ids]
    fam = family_of(up)
    for cfg in (P.PruneConfig(0.5, structured=True, unit="heads"), P.PruneConfig(0.3)):
        a, b = slimcore.api.prune(up, cfg), slimcore.api.prune(minilm, cfg)
        assert fam.scorer(up, "quick")(a).value == fam.scorer(minilm, "quick")(b).value
    q = Q.QuantConfig(bits=4, per_channel=True)
    assert fam.scorer(up, "quick")(slimcore.api.quantize(up, q)).value == \
        fam.scorer(minilm, "quick")(slimcore.api.quantize(minilm, q)).value
    with pytest.raises(U.UploadError, match="sentence set"):
        U.load_upload(zipped, "all-MiniLM-L6-v2.zip", b"PK\x05\x06" + bytes(18), "data.npz")
    assert "int8 per channel" in I8.variants(up)
