"""The course's model, saved from the notebook that teaches it for the notebooks after it.

Its teaching cell carries the line `# saved in helpers/model.py`, and tests/test_notebooks.py keeps
the two copies identical: change the notebook's cell, then copy it here.
"""
import tensorflow as tf


def create_model():
    """The course's CNN: Conv2D(32, 3x3, relu) -> MaxPool(2x2) -> Flatten -> Dense(10).

    Input: (28, 28, 1) float32, ink = 1.0 (see helpers.data.to_model_input); softmax
    output. Saved in helpers/model.py.
    """
    return tf.keras.Sequential(
        [
            tf.keras.layers.Input(shape=(28, 28, 1)),
            tf.keras.layers.Conv2D(32, (3, 3), activation="relu"),
            tf.keras.layers.MaxPooling2D((2, 2)),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
