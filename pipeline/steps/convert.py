"""Convert the Keras model to ONNX with tf2onnx, input named `features`, output `probabilities`.

Keras 3 models break `tf2onnx.convert.from_keras` (onnx/tensorflow-onnx#2448), so we convert a
`tf.function` with a named input signature. Two repairs follow, both needed on Keras 3:
the Normalization layer's mean and variance are captured tensors (not variables), which tf2onnx
turns into extra graph inputs; we bake them in as initializers so the model takes only the raw
features. And the output gets a stable name instead of `Identity:0`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.steps.schema import FEATURES, ONNX_INPUT, ONNX_OUTPUT
from pipeline.steps.train import load_model

if TYPE_CHECKING:
    import numpy as np
    import onnx

ONNX_FILE = "model.onnx"
OPSET = 17


@dataclass(frozen=True)
class ConvertResult:
    onnx_path: Path
    opset: int


def convert(model_dir: Path, out_dir: Path) -> ConvertResult:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import onnx
    import tensorflow as tf
    import tf2onnx

    model = load_model(model_dir)
    signature = [tf.TensorSpec([None, len(FEATURES)], tf.float32, name=ONNX_INPUT)]
    function = tf.function(lambda features: model(features, training=False))
    concrete = function.get_concrete_function(*signature)
    # Placeholder name -> value of each captured tensor (resources are variables; tf2onnx
    # freezes those itself).
    captured = (
        {
            placeholder.name: value.numpy()
            for placeholder, value in zip(
                concrete.inputs[-len(concrete.captured_inputs) :],
                concrete.captured_inputs,
                strict=True,
            )
            if value.dtype != tf.resource
        }
        if concrete.captured_inputs
        else {}
    )
    proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=OPSET)
    _bake_captures(proto, captured)
    _rename_output(proto, ONNX_OUTPUT)
    onnx.checker.check_model(proto)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / ONNX_FILE
    onnx.save(proto, str(onnx_path))
    return ConvertResult(onnx_path=onnx_path, opset=OPSET)


def _bake_captures(proto: onnx.ModelProto, captured: dict[str, np.ndarray]) -> None:
    from onnx import numpy_helper

    graph = proto.graph
    consumed = {name for node in graph.node for name in node.input}
    for graph_input in list(graph.input):
        if graph_input.name not in captured:
            continue
        graph.input.remove(graph_input)
        if graph_input.name in consumed:  # tf2onnx may have folded it away already
            graph.initializer.append(
                numpy_helper.from_array(captured[graph_input.name], graph_input.name)
            )
    extra = [i.name for i in graph.input if i.name != ONNX_INPUT]
    if extra:
        raise RuntimeError(f"ONNX model has inputs besides {ONNX_INPUT!r}: {extra}")
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"


def _rename_output(proto: onnx.ModelProto, name: str) -> None:
    graph = proto.graph
    if len(graph.output) != 1:
        raise RuntimeError(f"expected one ONNX output, got {len(graph.output)}")
    old = graph.output[0].name
    for node in graph.node:
        node.output[:] = [name if out == old else out for out in node.output]
        node.input[:] = [name if inp == old else inp for inp in node.input]
    graph.output[0].name = name
