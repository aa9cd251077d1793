"""Graph models: a torch.export program runs as its own graph (residual adds, attention, anything made of ATen
operations), read without running anything from the file; a named architecture with its weights gives exactly the
figures of the same model uploaded as a program; the labs work on them, coupled channels removed together."""
import copy
import io
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save as st_save
from torch import nn

import slimcore
from slimcore import architectures as A
from slimcore import graph as G
from slimcore import int8 as I
from slimcore import pruning as P
from slimcore import quantization as Q
from slimcore import upload as U
from slimcore.data import digit_images


def _pt2(model, x, dynamic=True):
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},) if dynamic else None)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    return buf.getvalue()


def _npz(x, y):
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    return buf.getvalue()


@pytest.fixture(scope="module")
def resnet18_files():
    """A ResNet-18 (random seeded weights, 10 classes, torchvision's parameter names) as a .pt2 program and as a
    safetensors state dict, with the digits scaled to 3 x 32 x 32 images as evaluation data."""
    model = A.build("resnet18", 10, 3, seed=0)
    x, y = digit_images(32, 3)
    return {"model": model, "pt2": _pt2(model, torch.as_tensor(x[:2])),
            "safetensors": st_save({k: v.contiguous() for k, v in model.state_dict().items()}), "data": _npz(x, y)}


@pytest.fixture(scope="module")
def resnet18_both(resnet18_files):
    f = resnet18_files
    program = U.load_upload(f["pt2"], "resnet18.pt2", f["data"], "images.npz")
    named = U.load_upload(f["safetensors"], "resnet18.safetensors", f["data"], "images.npz", architecture="resnet18")
    return program, named


def test_resnet18_is_the_published_architecture():
    model = A.build("resnet18", 1000, 3, seed=0)
    assert sum(p.numel() for p in model.parameters()) == 11_689_512   # torchvision's resnet18: 11.7 M parameters
    assert sum(p.numel() for p in A.build("resnet50", 1000, 3, seed=0).parameters()) == 25_557_032
    assert torch.equal(A.build("resnet18", 10, 3, seed=3).fc.weight, A.build("resnet18", 10, 3, seed=3).fc.weight)


def test_a_program_and_a_named_architecture_give_identical_figures(resnet18_both, resnet18_files):
    program, named = resnet18_both
    assert program.card["graph"] and named.card["graph"]
    assert "resnet18 architecture" in named.card["architecture"] and program.name != named.name
    x = program.test.x
    assert torch.equal(program.test.x, named.test.x)
    assert torch.equal(program.model(x), named.model(x))
    assert torch.equal(program.model(x[:8]), resnet18_files["model"](x[:8]))   # the model that was exported
    for key in ("test_accuracy", "parameters"):
        assert program.card[key] == named.card[key]
    assert slimcore.serialized_bytes(program.model) == slimcore.serialized_bytes(named.model)
    for cfg in (P.PruneConfig(0.5, structured=True), P.PruneConfig(0.7, "l1", "global")):
        a, b = slimcore.api.prune(program, cfg), slimcore.api.prune(named, cfg)
        assert slimcore.api.score(program, a) == slimcore.api.score(named, b)
        assert slimcore.serialized_bytes(a) == slimcore.serialized_bytes(b)
    qa, qb = (slimcore.api.quantize(s, Q.QuantConfig(bits=4, per_channel=True)) for s in (program, named))
    assert slimcore.api.score(program, qa) == slimcore.api.score(named, qb)


def test_structured_pruning_removes_coupled_channels_together_and_keeps_the_output_shape(resnet18_both):
    program, _ = resnet18_both
    groups = P.coupled_layers(program.model)
    assert ("conv1", "layer1.0.conv2", "layer1.1.conv2") in groups
    assert {"layer2.0.downsample.0", "layer2.0.conv2", "layer2.1.conv2"} in [set(g) for g in groups]
    assert len(groups) == 4   # one residual stream per stage
    cfg = P.PruneConfig(0.5, structured=True)
    keep = P.masks(program.model, cfg)
    thin = slimcore.api.prune(program, cfg)
    x = program.test.x[:32]
    assert thin(x).shape == program.model(x).shape
    for n, m in slimcore.weight_layers(thin).items():   # half the channels of every layer but the classifier
        full = 64 * 2 ** (int(n[5]) - 1) if n.startswith("layer") else 64 if n == "conv1" else 10
        assert m.weight.shape[0] == (full if n == "fc" else full // 2), n
        assert torch.equal(P.channel_keep(keep[n]).sum(), torch.tensor(m.weight.shape[0])), n
    assert sum(p.numel() for p in thin.parameters()) < 0.3 * sum(p.numel() for p in program.model.parameters())
    assert "residual" in G.coupled_note(program.model)


@pytest.mark.slow
def test_real_int8_runs_on_a_graph_model(resnet18_both):
    program, named = resnet18_both
    table, _ = I.build_table(program)
    assert {"int8 (ONNX Runtime)", "int8 (torch.ao)"} <= set(table)
    for built in table.values():
        assert built.kind == "static"
        assert slimcore.api.score(program, built.model).value > 0


def test_a_graph_runs_only_aten_operations_checked_again_when_built():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return torch.cat([self.fc(x), x.relu()], 1) + self.fc.weight.sum()

    net = Net().eval()
    x = torch.randn(5, 4)
    desc, tensors = G.describe(torch.export.export(net, (x,), dynamic_shapes=({0: torch.export.Dim("b")},)))
    model = G.build(json.loads(json.dumps(desc)), tensors)
    assert torch.equal(model(x), net(x)) and isinstance(model.fc, nn.Linear)

    def tampered(change):
        d = json.loads(json.dumps(desc))
        change(d)
        with pytest.raises(G.GraphError):
            G.build(d, dict(tensors))

    def call(target):
        return lambda d: d["nodes"].__setitem__(-1, ["call_function", target, [{"node": 0}], {}])

    tampered(call("os.system"))                      # not an ATen operator
    tampered(call("aten.copy_.default"))             # writes into its argument
    tampered(call("aten.no_such_op.default"))
    tampered(call("builtins.eval"))
    tampered(lambda d: d["layers"].__setitem__("__class__", d["layers"].pop("fc")))     # a name that is not a layer's
    tampered(lambda d: d["layers"].__setitem__("forward", d["layers"].pop("fc")))
    tampered(lambda d: d["layers"]["fc"].__setitem__(0, "Sequential"))                 # not a standard layer
    tampered(lambda d: d["layers"]["fc"][1].__setitem__("out_features", 10**9))         # tensors do not fit it
    tampered(lambda d: d["nodes"].__setitem__(0, ["call_module", "fc", [{"node": 7}], {}]))   # a later node
    tampered(lambda d: d["nodes"][-1].__setitem__(2, [{"str": "x" * 40}]))
    tampered(lambda d: d.__setitem__("input_shape", [10**9]))
    deep = {"list": []}
    for _ in range(20):
        deep = {"list": [deep]}
    tampered(lambda d: d["nodes"][-1].__setitem__(2, [deep]))


def test_an_operation_no_lab_compresses_is_measured_with_a_message_naming_what_is_left_alone():
    class Recurrent(nn.Module):
        def __init__(self, head: bool):
            super().__init__()
            self.rnn = nn.GRU(8, 16, batch_first=True)
            self.head = nn.Linear(16, 10) if head else None

        def forward(self, x):
            out = self.rnn(x.reshape(x.shape[0], 5, 8))[0][:, -1]
            return self.head(out) if self.head is not None else out[:, :10]

    torch.manual_seed(0)
    x = torch.as_tensor(np.random.default_rng(0).normal(size=(60, 40)), dtype=torch.float32)
    data = _npz(x.numpy(), np.arange(60) % 10)
    for head in (True, False):
        net = Recurrent(head).eval()
        up = U.load_upload(_pt2(net, x[:2]), "gru.pt2", data, "d.npz")
        assert torch.allclose(up.model(x), net(x), atol=1e-6)
        notes = " ".join(G.limits(up.model))
        if head:
            assert list(slimcore.weight_layers(up.model)) == ["head"]
            assert "rnn.weight_ih_l0" in notes and "aten.gru" in notes
            assert P.masks(up.model, P.PruneConfig(0.5))["head"].float().mean() == 0.5
        else:
            assert "do not apply" in notes and "no Linear or Conv layer" in notes
            assert up.card["test_accuracy"] >= 0


def test_programs_the_labs_cannot_run_are_refused_with_the_reason():
    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 10)

        def forward(self, x):
            h = x.reshape(4, 64)
            return self.b(h + self.a(h))

    msg = ""
    try:
        U.load_upload(_pt2(Fixed().eval(), torch.zeros(4, 1, 8, 8), dynamic=False), "fixed.pt2")
    except U.UploadError as e:
        msg = str(e)
    assert "batch of exactly 4" in msg and "dynamic" in msg

    class Writes(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(64, 10)
            self.register_buffer("count", torch.zeros(1))

        def forward(self, x):
            self.count.add_(1)
            return self.a(x.flatten(1)) + self.count

    with pytest.raises(U.UploadError, match="writes into a tensor in place|changes its own buffers"):
        U.load_upload(_pt2(Writes().eval(), torch.zeros(2, 1, 8, 8)), "writes.pt2")


def test_named_architectures_refuse_weights_that_do_not_fit():
    state = A.build("resnet18", 10, 3, seed=0).state_dict()
    with pytest.raises(ValueError, match="do not fit resnet34"):
        A.fit("resnet34", state)
    with pytest.raises(ValueError, match="no fc.weight"):
        A.fit("resnet18", {k: v for k, v in state.items() if k != "fc.weight"})
    blob = st_save({k: v.contiguous() for k, v in state.items()})
    with pytest.raises(U.UploadError, match="unknown architecture"):
        U.load_upload(blob, "w.safetensors", architecture="vgg16")
    with pytest.raises(U.UploadError, match="do not fit resnet50"):
        U.load_upload(blob, "w.safetensors", architecture="resnet50")
    with pytest.raises(U.UploadError, match="3 x 8 x 8|fits none|input"):   # 3-channel weights, 1-channel digits
        U.load_upload(blob, "w.safetensors", architecture="resnet18")


def test_a_graph_copy_keeps_its_input_shape_and_structure():
    model = A.build("resnet18", 10, 3, seed=0)
    desc, tensors = G.describe(torch.export.export(model, (torch.zeros(2, 3, 32, 32),),
                                                   dynamic_shapes=({0: torch.export.Dim("b")},)))
    g = G.build(desc, tensors)
    assert g.input_shape == (3, 32, 32)
    twin = copy.deepcopy(g)
    assert P.coupled_layers(twin) == P.coupled_layers(g)


def test_macs_of_every_operation_are_counted_where_layers_miss_some():
    """A graph whose matrix products are not all layers (attention's): the layer rule counts the projections,
    torch.utils.flop_counter every product; for a plain ResNet the two agree."""
    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.out = nn.Linear(16, 48), nn.Linear(16 * 8, 10)

        def forward(self, x):
            q, k, v = self.qkv(x.reshape(x.shape[0], 8, 16)).chunk(3, -1)
            a = torch.softmax(q @ k.transpose(1, 2) / 4, -1) @ v
            return self.out(a.flatten(1))

    x = torch.randn(3, 128)
    desc, tensors = G.describe(torch.export.export(Attend().eval(), (x,), dynamic_shapes=({0: torch.export.Dim("b")},)))
    g = G.build(desc, tensors)
    layers = sum(r.macs for r in slimcore.metrics.layer_table(g, x))
    assert layers == 8 * 16 * 48 + 128 * 10
    assert slimcore.metrics.flop_macs(g, x) == layers + 2 * 8 * 8 * 16   # q k^T and a v
    resnet = A.build("resnet18", 10, 3, seed=0)
    img = torch.zeros(1, 3, 32, 32)
    assert slimcore.metrics.flop_macs(resnet, img) == sum(r.macs for r in slimcore.metrics.layer_table(resnet, img))


def _hf_zip(model, folder):
    import zipfile

    model.save_pretrained(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f"my-model/{f.name}")
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_a_hugging_face_image_classifier_joins_the_classifiers_as_its_graph(kind, tmp_path):
    """A ViT or a ResNet folder (config.json + model.safetensors, transformers' own classes; random seeded weights):
    read without remote code, handed to the server as a graph (no transformers code runs there), the transformers
    model's outputs; the labs work on it."""
    import transformers

    torch.manual_seed(0)
    if kind == "vit":
        config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, intermediate_size=128, num_labels=10)
        net = transformers.ViTForImageClassification(config).eval()
    else:
        config = transformers.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], num_labels=10)
        net = transformers.ResNetForImageClassification(config).eval()
    x, y = digit_images(32, 3)
    up = U.load_upload(_hf_zip(net, tmp_path / "folder"), "my-model.zip", _npz(x, y), "images.npz")
    assert up.card["graph"] and f"{kind} (Hugging Face)" in up.card["architecture"]
    images = up.test.x[:16]
    torch.testing.assert_close(up.model(images), net(pixel_values=images).logits, atol=1e-5, rtol=1e-5)
    assert all(isinstance(m, (nn.Linear, nn.Conv2d)) for m in slimcore.weight_layers(up.model).values())
    pruned = slimcore.api.prune(up, P.PruneConfig(0.5))
    assert slimcore.api.score(up, pruned).examples == len(up.test)
    assert slimcore.api.score(up, slimcore.api.quantize(up, Q.QuantConfig(bits=8))).value == pytest.approx(
        up.card["test_accuracy"], abs=0.05)
    if kind == "resnet":   # the shortcut and the last conv of a stage add: tied
        assert any(any("shortcut" in n for n in g) for g in P.coupled_layers(up.model))
        thin = slimcore.api.prune(up, P.PruneConfig(0.5, structured=True))
        assert thin(images).shape == (16, 10)


def test_a_hugging_face_folder_that_asks_for_its_own_code_is_refused(tmp_path):
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("m/config.json", json.dumps({"model_type": "vit", "auto_map": {"AutoModel": "x.Model"},
                                                "id2label": {"0": "a", "1": "b"}}))
        z.writestr("m/model.safetensors", st_save({"w": torch.zeros(1)}))
    with pytest.raises(U.UploadError, match="never runs remote code"):
        U.load_upload(buf.getvalue(), "m.zip", _npz(*digit_images(32, 3)), "d.npz")


def test_a_hugging_face_image_folder_whose_weights_do_not_fit_its_config_is_refused(tmp_path):
    import zipfile

    import transformers

    net = transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
        intermediate_size=128, num_labels=10)).eval()
    net.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", json.dumps(config | {"num_hidden_layers": 2}))   # one layer's weights missing
        z.write(tmp_path / "model.safetensors", "model.safetensors")
    with pytest.raises(U.UploadError, match="does not fit config.json's ViTForImageClassification"):
        U.load_upload(buf.getvalue(), "m.zip", _npz(*digit_images(32, 3)), "d.npz")


def test_a_graph_whose_activations_grow_beyond_the_server_at_the_labs_batch_is_refused():
    """Fine on the few examples the reading process runs, 6 GiB at a batch of 256: refused with the figures."""
    class Balloon(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            big = x.flatten(1).repeat(1, 100_000)        # 25.6 MB per example
            return self.fc(x.flatten(1)) + big.mean(1, keepdim=True)

    with pytest.raises(U.UploadError, match="per example; a batch of 256"):
        U.load_upload(_pt2(Balloon().eval(), torch.zeros(2, 1, 8, 8)), "balloon.pt2")
    model = A.build("resnet18", 10, 3, seed=0)
    per = G.activation_bytes(G.build(*G.describe(torch.export.export(model, (torch.zeros(2, 3, 32, 32),)))),
                             torch.zeros(2, 3, 32, 32))
    assert 100_000 < per < 4 * 2**30 / 256   # a ResNet-18 on 32 x 32 images passes


def test_channels_whose_removal_breaks_the_graph_are_kept_and_said():
    """A ViT-like graph: the residual stream is also written by a class token (a weight outside any layer) and q/k/v
    are reshaped into heads: removing their channels breaks the model, so structured pruning keeps them whole and
    thins what it can (the MLP's hidden layer)."""
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.cls = nn.Linear(16, 32), nn.Parameter(torch.randn(1, 1, 32))
            self.qkv, self.proj = nn.Linear(32, 96), nn.Linear(32, 32)
            self.fc1, self.fc2, self.head = nn.Linear(32, 64), nn.Linear(64, 32), nn.Linear(32, 10)

        def forward(self, x):
            h = self.embed(x.reshape(x.shape[0], 4, 16))
            h = torch.cat([self.cls.expand(x.shape[0], -1, -1), h], 1)
            q, k, v = self.qkv(h).reshape(x.shape[0], 5, 3, 4, 8).permute(2, 0, 3, 1, 4)
            a = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(x.shape[0], 5, 32)
            h = h + self.proj(a)
            h = h + self.fc2(torch.relu(self.fc1(h)))
            return self.head(h[:, 0])

    torch.manual_seed(0)
    x = torch.randn(3, 64)
    g = G.build(*G.describe(torch.export.export(Tiny().eval(), (x,), dynamic_shapes=({0: torch.export.Dim("b")},))))
    locked = set(P.structure(g).locked)
    assert {"embed", "proj", "fc2", "qkv"} <= locked and "fc1" not in locked
    keep = P.masks(g, P.PruneConfig(0.5, structured=True))
    assert all(keep[n].all() for n in locked) and not keep["fc1"].all()
    thin, _ = P.split_channels(g, keep, x[:1])
    assert thin(x).shape == (3, 10) and slimcore.weight_layers(thin)["fc1"].weight.shape[0] == 32
    assert "keep all their channels" in G.coupled_note(g)
