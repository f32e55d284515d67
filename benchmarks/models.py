"""The two classifiers compared: keras_bert's and keras-hub's, with the same head.

Both are a BERT encoder of the same shape, a dropout and a float32 dense layer
on the pooled `[CLS]` output, compiled with the same optimizer and loss. The
encoders match in every setting keras-hub's `BertBackbone` fixes: tanh-
approximate GELU, post-LN blocks, layer norm epsilon 1e-12, dropout 0.1 on
embeddings, attention probabilities and both sublayers, 512 positions, 2
segments, truncated-normal initialisation with standard deviation 0.02.
"""

import keras

from keras_bert.inputs import INPUT_NAMES

MODEL_NAMES = ("keras_bert", "keras_hub")


def keras_bert_classifier(preset, num_classes, dtype, **encoder_options):
    """`keras_bert.models.BertClassifier` on `BertEncoder.from_preset(preset)`."""
    from keras_bert import BertEncoder
    from keras_bert.models import BertClassifier

    options = dict({"activation": "gelu_approximate"}, **encoder_options)
    encoder = BertEncoder.from_preset(preset, dtype=dtype, **options)
    return BertClassifier(encoder, num_classes=num_classes, dropout=0.1)


def keras_hub_classifier(preset, num_classes, dtype):
    """keras-hub's `BertBackbone` of the same shape, with `BertClassifier`'s head."""
    import keras_hub

    from keras_bert import BertEncoder

    config = BertEncoder.preset_config(preset)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config["vocabulary_size"],
        num_layers=config["num_layers"],
        num_heads=config["num_heads"],
        hidden_dim=config["hidden_dim"],
        intermediate_dim=config["intermediate_dim"],
        dropout=0.1,
        max_sequence_length=512,
        num_segments=2,
        dtype=dtype,
    )
    inputs = {
        name: keras.Input(shape=(None,), dtype="int32", name=name)
        for name in INPUT_NAMES
    }
    pooled_output = backbone(inputs)["pooled_output"]
    pooled_output = keras.layers.Dropout(0.1, name="classifier_dropout")(pooled_output)
    logits = keras.layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
        dtype="float32",
        name="logits",
    )(pooled_output)
    return keras.Model(inputs, logits)


def build(name, preset, num_classes, dtype, **encoder_options):
    """One of `MODEL_NAMES`, built (not compiled)."""
    if name == "keras_bert":
        return keras_bert_classifier(preset, num_classes, dtype, **encoder_options)
    if name == "keras_hub":
        return keras_hub_classifier(preset, num_classes, dtype)
    raise ValueError(f"`name` must be one of {MODEL_NAMES}, received {name!r}.")


def compile_for_training(model, dtype, jit_compile, learning_rate=1e-4):
    """Adam and sparse cross-entropy; loss scaling under `mixed_float16`."""
    optimizer = keras.optimizers.Adam(learning_rate)
    if keras.DTypePolicy(dtype).compute_dtype == "float16":
        # The policy is set on the encoder only, so compile() cannot infer it.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    return model
