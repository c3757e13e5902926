"""Train the Keras classifier. Normalisation is a layer inside the model, adapted on the training
data, so the exported model (and the served ONNX model) takes raw features."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.steps.preprocess import load_split
from pipeline.steps.schema import ONNX_INPUT, ONNX_OUTPUT

if TYPE_CHECKING:
    import keras

MODEL_FILE = "model.keras"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 0.003
    seed: int = 42


@dataclass(frozen=True)
class TrainResult:
    train_loss: float
    train_accuracy: float


def build_model(train_features: np.ndarray, classes: int, learning_rate: float) -> keras.Model:
    import keras

    normalise = keras.layers.Normalization(name="normalise")
    normalise.adapt(train_features)
    inputs = keras.Input(shape=(train_features.shape[1],), name=ONNX_INPUT, dtype="float32")
    hidden = keras.layers.Dense(64, activation="relu")(normalise(inputs))
    hidden = keras.layers.Dense(32, activation="relu")(hidden)
    outputs = keras.layers.Dense(classes, activation="softmax", name=ONNX_OUTPUT)(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train(splits_dir: Path, out_dir: Path, config: TrainConfig) -> TrainResult:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(config.seed)
    data = load_split(splits_dir, "train")
    model = build_model(data.features, len(data.classes), config.learning_rate)
    history = model.fit(
        data.features,
        data.labels,
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=2,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / MODEL_FILE)
    return TrainResult(
        train_loss=float(history.history["loss"][-1]),
        train_accuracy=float(history.history["accuracy"][-1]),
    )


def load_model(model_dir: Path) -> keras.Model:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras.models.load_model(model_dir / MODEL_FILE)
