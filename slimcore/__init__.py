"""slimcore: the SlimLab backend (pure PyTorch, no UI). Compression techniques, measurement and plot builders."""
from .data import Dataset, Split, load_dataset
from .metrics import (LayerInfo, Latency, Measurement, ModelledSize, accuracy, agreement, compare_latencies,
                      compare_latency, latency, layer_table,
                      latencies, measure, modelled_size, predict, serialized_bytes, weight_layers)
from .int8 import Int8Model, int8_model
from .pruning import GradualConfig, PruneConfig, gradual_prune, masks, prune, remove_channels
from .quantization import (ActivationConfig, LayerError, QParams, QuantConfig, accuracy_by_bits, binarize, calibrate,
                           fake_quantize, fixed_point, layer_errors, levels, qparams, quantize, quantized_weights,
                           sqnr_db, ternarize)
from .sweep import Allocation, Outcome, SweepError, allocate, pareto, sensitivity, sweep
from .recipe import Int8Config, Recipe
from .zoo import DEFAULT_SAMPLE, Sample, SampleError, list_samples, load_sample

__all__ = [
    "Dataset", "Split", "load_dataset",
    "LayerInfo", "Latency", "Measurement", "ModelledSize", "accuracy", "agreement", "compare_latencies", "compare_latency", "latency", "layer_table", "latencies", "measure",
    "modelled_size", "predict", "serialized_bytes", "weight_layers",
    "GradualConfig", "PruneConfig", "gradual_prune", "masks", "prune", "remove_channels",
    "Int8Model", "int8_model",
    "ActivationConfig", "LayerError", "QParams", "QuantConfig", "accuracy_by_bits", "binarize", "calibrate",
    "fake_quantize", "fixed_point", "layer_errors", "levels", "qparams", "quantize", "quantized_weights", "sqnr_db",
    "ternarize",
    "Allocation", "Outcome", "SweepError", "allocate", "pareto", "sensitivity", "sweep",
    "Int8Config", "Recipe",
    "DEFAULT_SAMPLE", "Sample", "SampleError", "list_samples", "load_sample",
]
