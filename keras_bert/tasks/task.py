"""The task interface: everything the apps need to know about one fine-tuning task.

A task is one module in `keras_bert/tasks/` with one `Task` subclass, registered by one line
in `keras_bert/tasks/__init__.py`. `training.finetune`, `training.predict`,
`export.saved_model`, `export.tflite` and `export.check_arm64` find it there by the name that
`label_map.json` and `finetune_config.json` record, and call only the methods below; no app
has a branch per task.

What a task names:

| member | used by | what |
|---|---|---|
| `name` | all | registry key, written to the model directory |
| `default_sequence_length` | finetune | the packed length when `--sequence_length` is not given |
| `selection_metric` | finetune | the `evaluate` key that picks the best `--dev` checkpoint |
| `sequence_outputs` | finetune, predict | whether the model's outputs have a sequence axis |
| `from_settings(settings)` | finetune, predict, export | the task from flag values or a saved config |
| `build_preprocessor(tokenizer)` | all | the one road from text to the model's inputs |
| `read(path, tokenizer, labels, is_training)` | finetune | a data file, preprocessed |
| `labels(train_data)`, `encode_targets(data, labels)` | finetune | class/tag names and targets |
| `build_model(encoder, labels)` | finetune | the Keras task model |
| `loss()`, `fit_metrics()`, `evaluate(...)` | finetune | training and selection |
| `inference_config()` | finetune | settings saved to `finetune_config.json` for inference |
| `predict_texts(model_dir, lines, batch_size)` | predict | decoded outputs, one dict per input line |
| `format_result(result)` | predict | one line of `--format=tsv` output |
| `serving` | export | `None`, or what the exporters trace (`ServingSpec`) |
"""

import dataclasses
import inspect


@dataclasses.dataclass(frozen=True)
class ServingSpec:
    """What the exporters trace for a task: string inputs and the outputs built from logits.

    Attributes:
        text_inputs: tuple of str. Names of the string inputs of the text signature, e.g.
            `("text",)` or `("text", "text_pair")`.
        outputs: callable `(logits, model_dir) -> dict of tensors`: the signature's outputs
            from the model's outputs, in graph ops.
    """

    text_inputs: tuple
    outputs: object


class Task:
    """Base class of the fine-tuning tasks; subclasses fill in the members (see module doc)."""

    name = None
    default_sequence_length = 128
    selection_metric = None
    sequence_outputs = False

    @classmethod
    def from_settings(cls, settings):
        """The task built from the entries of `settings` that its constructor takes.

        Args:
            settings: mapping. Flag values (`training.finetune`) or a saved
                `finetune_config.json` (`training.predict`, the exporters). Keys the
                constructor does not take are ignored; missing ones keep their defaults.
        """
        settings = dict(settings)
        # `finetune_config.json` files record the packed length under its old key (and the
        # flags keep the old name as an alias): it reaches the constructor as `sequence_length`.
        old_key_value = settings.pop("max_seq_length", None)
        if settings.get("sequence_length") is None:
            settings["sequence_length"] = old_key_value
        parameters = inspect.signature(cls.__init__).parameters
        kwargs = {
            name: settings[name]
            for name in parameters
            if name != "self" and name in settings and settings[name] is not None
        }
        return cls(**kwargs)

    # The members below have no default: a task must define them.

    def build_preprocessor(self, tokenizer):
        raise NotImplementedError

    def read(self, path, tokenizer, labels=None, is_training=False):
        raise NotImplementedError

    def labels(self, train_data):
        raise NotImplementedError

    def encode_targets(self, data, labels):
        raise NotImplementedError

    def build_model(self, encoder, labels):
        raise NotImplementedError

    def loss(self):
        raise NotImplementedError

    def fit_metrics(self):
        return None

    def evaluate(self, model, data, labels, batch_size=128):
        raise NotImplementedError

    def inference_config(self):
        return {}

    def predict_texts(self, model_dir, lines, batch_size=64):
        raise NotImplementedError

    def format_result(self, result):
        raise NotImplementedError

    serving = None
