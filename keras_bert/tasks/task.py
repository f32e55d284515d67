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
| `has_labels` | model directory | whether `label_map.json` lists class or tag names |
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

from keras_bert.inputs import INPUT_NAMES
from keras_bert.inputs import trim_to_longest


# Texts the exporters verify a text signature on when no evaluation file is given: ordinary
# text, accents, a literal special token, punctuation runs, an empty string, an over-long word.
CHECK_TEXTS = (
    "it 's a charming and often affecting journey .",
    "Unflinchingly bleak and desperate.",
    "Café crème, naïve résumé — déjà vu!",
    "the [MASK] was [SEP] dull",
    "",
    "supercalifragilistic" * 6 + " indeed",
)


@dataclasses.dataclass(frozen=True)
class ServingSpec:
    """What the exporters trace and check for a task.

    Two signatures are traced: the token-id one (the model's dict of int32 `INPUT_NAMES`
    `(batch_size, sequence_length)` -> `outputs`) and the text one (string `(batch_size,)`
    tensors named `text_inputs` -> `text_outputs`). By default the text signature packs the
    strings with the task's preprocessor, cuts the batch to its longest row and returns
    `outputs`; a task whose preprocessor gives more than the model's inputs (QA's windows)
    or whose results need the text (words, answer strings) traces its own `text_outputs`.

    Attributes:
        text_inputs: tuple of str. Names of the string inputs of the text signature, e.g.
            `("text",)`, `("text", "text_pair")` or `("question", "context")`, in the order
            the preprocessor takes them.
        outputs: callable `(model_outputs, labels) -> dict of tensors`: the token-id
            signature's outputs from the model's outputs, in graph ops.
        numeric_outputs: tuple of str. The token-id outputs that verification compares with
            the Keras model's, number for number. Defaults to `("logits",)`.
        text_outputs: callable `(model, preprocessor, labels, texts) -> dict of tensors`, or
            None: the text signature's outputs from a dict of string `(batch_size,)` tensors
            named by `text_inputs`, in graph ops. None: `default_text_outputs`.
        read_inputs: callable `(model_dir, path, limit) -> dict of lists of str` (named by
            `text_inputs`): the inputs to verify the text signature on, read from an
            evaluation file `path` (the task's data format), or built-in ones when `path` is
            None; at most `limit` rows.
        check: callable `(model_dir, inputs, outputs, max_abs_diff) -> dict`: compares the
            text signature's `outputs` (numpy arrays, strings decoded to str) on `inputs`
            (as `read_inputs` gives them) with what `training.predict` computes in Python;
            the dict holds the figures and `passed`.
    """

    text_inputs: tuple
    outputs: object
    numeric_outputs: tuple = ("logits",)
    text_outputs: object = None
    read_inputs: object = None
    check: object = None

    def text_signature_outputs(self, model, preprocessor, labels, texts):
        """The text signature's outputs: `text_outputs`, or `default_text_outputs`."""
        if self.text_outputs is not None:
            return self.text_outputs(model, preprocessor, labels, texts)
        return self.default_text_outputs(model, preprocessor, labels, texts)

    def default_text_outputs(self, model, preprocessor, labels, texts):
        """`outputs` of the model on the texts packed by the preprocessor, in graph ops.

        The batch is cut to its longest packed row (`keras_bert.inputs.trim_to_longest`):
        outputs at real positions do not depend on padding.
        """
        packed = preprocessor(*[texts[name] for name in self.text_inputs])
        inputs = trim_to_longest({name: packed[name] for name in INPUT_NAMES})
        return self.outputs(model(inputs, training=False), labels)


class Task:
    """Base class of the fine-tuning tasks; subclasses fill in the members (see module doc)."""

    name = None
    has_labels = True
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
