"""Chart layouts that stay readable at 1280 px: long category names wrapped upright, many bars without labels that
overlap, legends below the axis titles, sizes said in words."""
from slimcore import plots


def test_long_categories_are_wrapped_upright_and_the_legend_moves_down():
    fig = plots.grouped_bars(["original", "pruned + fine-tuned", "Huffman coded"], {"ours": [1, 9, 40]},
                             "Compression ratio", "stage", "times smaller")
    assert fig.layout.xaxis.tickangle == 0
    assert list(fig.layout.xaxis.ticktext) == ["original", "pruned +<br>fine-tuned", "Huffman coded"]
    assert fig.layout.legend.y < -0.3


def test_an_encoders_36_layers_get_short_ticks_and_no_overlapping_labels():
    names = [f"encoder.layer.{i // 6}.attention.self.{k}" for i, k in enumerate(["query", "key", "value"] * 12)]
    fig = plots.sqnr_bars(names, [30.0 + i for i in range(36)], highlight=names[0])
    assert fig.data[0].textposition == "none" and "hover" in fig.layout.xaxis.title.text
    assert fig.layout.xaxis.ticktext[0] == "0.…self.query"
    few = plots.sqnr_bars(["fc1", "fc2"], [30.0, 31.0])
    assert few.data[0].textposition == "outside" and list(few.data[0].text) == ["30.0 dB", "31.0 dB"]


def test_the_bits_curve_legend_sits_below_its_two_line_ticks():
    fig = plots.bits_curve([1, 2, 8], [0.1, 0.5, 0.9])
    assert fig.layout.legend.y <= -0.4 and fig.layout.xaxis.ticktext[0] == "1<br>(bin)"


def test_a_size_change_in_words():
    from slimui.pruning import times_smaller

    assert times_smaller(100, 25) == "4.0x smaller" and times_smaller(100, 130) == "1.3x larger"
    assert times_smaller(100, 99) == "same size"
