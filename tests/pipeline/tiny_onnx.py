"""Tiny ONNX models with the pipeline's input and output names, built without TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline.steps.schema import FEATURES, ONNX_INPUT, ONNX_OUTPUT


def constant_onnx(path: Path, predicted_class: int, classes: int = 4) -> Path:
    """An ONNX model with the pipeline's input/output names that always predicts one class."""
    bias = np.zeros(classes, dtype=np.float32)
    bias[predicted_class] = 5.0
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [ONNX_INPUT, "w"], ["logits0"]),
            helper.make_node("Add", ["logits0", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], [ONNX_OUTPUT], axis=1),
        ],
        "constant",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, ["batch", len(FEATURES)])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, ["batch", classes])],
        initializer=[
            numpy_helper.from_array(np.zeros((len(FEATURES), classes), np.float32), "w"),
            numpy_helper.from_array(bias, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
