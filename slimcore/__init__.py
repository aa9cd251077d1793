"""slimcore: the SlimLab backend (pure PyTorch, no UI). Compression techniques, measurement and plot builders."""
from . import families
from .api import Measurement, distill, measure, prune, quantize, score, time_models
from .data import Dataset, Split, load_dataset
from .distillation import DistillConfig, DistillResult
from .families import Family, Metric, Score, family_of
from .int8 import Int8Model, int8_model
from .metrics import (
                      Latency,
                      LayerInfo,
                      ModelledSize,
                      accuracy,
                      agreement,
                      compare_latencies,
                      compare_latency,
                      latencies,
                      latency,
                      layer_table,
                      modelled_size,
                      predict,
                      serialized_bytes,
                      weight_layers,
)
from .pruning import GradualConfig, PruneConfig, gradual_prune, masks, remove_channels
from .quantization import (
                      ActivationConfig,
                      LayerError,
                      QParams,
                      QuantConfig,
                      binarize,
                      calibrate,
                      fake_quantize,
                      fixed_point,
                      layer_errors,
                      levels,
                      qparams,
                      quality_by_bits,
                      quantized_weights,
                      sqnr_db,
                      ternarize,
)
from .recipe import Int8Config, Recipe
from .sensitivity import ScanConfig, scan, scan_sample
from .sweep import Allocation, Outcome, SweepError, allocate, pareto, sweep
from .zoo import DEFAULT_SAMPLE, Sample, SampleError, list_samples, load_sample

__version__ = "0.15.0"   # the package's version (pyproject.toml reads it); CHANGELOG.md says when it moves

__all__ = [
    "__version__",
    "families", "Family", "Metric", "Score", "family_of",
    "Dataset", "Split", "load_dataset",
    "LayerInfo", "Latency", "ModelledSize", "accuracy", "agreement", "compare_latencies", "compare_latency", "latency",
    "layer_table", "latencies",
    "modelled_size", "predict", "serialized_bytes", "weight_layers",
    "GradualConfig", "PruneConfig", "gradual_prune", "masks", "remove_channels",
    "Int8Model", "int8_model",
    "ActivationConfig", "LayerError", "QParams", "QuantConfig", "quality_by_bits", "binarize", "calibrate",
    "fake_quantize", "fixed_point", "layer_errors", "levels", "qparams", "quantized_weights", "sqnr_db",
    "ternarize",
    "Allocation", "Outcome", "SweepError", "allocate", "pareto", "sweep", "ScanConfig", "scan", "scan_sample",
    "Int8Config", "Recipe",
    "Measurement", "distill", "measure", "prune", "quantize", "score", "time_models", "DistillConfig",
    "DistillResult",
    "DEFAULT_SAMPLE", "Sample", "SampleError", "list_samples", "load_sample",
]
