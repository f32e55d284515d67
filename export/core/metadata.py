"""TFLite Model Metadata: the tokenizer, labels and descriptions Android's task libraries read.

MediaPipe Tasks (`TextClassifier`, `TextEmbedder`) and the LiteRT Task Library
(`BertNLClassifier`, `BertQuestionAnswerer`) take a BERT `.tflite` file without any tokenizer
code from the app: they read the WordPiece vocabulary, the input tensors' roles and the label
names from the metadata inside the file. This module writes that metadata itself, from the
published schema (`metadata_schema.fbs` of TFLite Support and MediaPipe, schema version 1.5.0,
file identifier `M001`), with the `flatbuffers` Builder:

    file = the model flatbuffer (`TFL3`) with
             metadata["TFLITE_METADATA"] -> a new buffer holding the ModelMetadata flatbuffer
           + a zip archive appended after it (stored, not compressed) holding the
             associated files: `vocab.txt`, and `labels.txt` for classifiers and taggers

    content = metadata.populate(
        content, kind="classifier", model_info=metadata.ModelInfo(name="sst2", ...),
        vocabulary_path="out/model.vocab.txt", lower_case=True, labels=["negative", "positive"])
    metadata.read(content)["inputs"]   # [{"name": "segment_ids", "tensor": ...}, ...]

What the clients require (their sources; checked with tflite-support 0.4.4 and MediaPipe 1.2.2):
- the BertTokenizer process unit at index 0 of the subgraph's `input_process_units`, its
  vocabulary an associated file of that name in the zip;
- input tensor metadata named `ids`, `mask`, `segment_ids`, one per model input, in the model's
  input order (they find each input by that name);
- `BertNLClassifier`: exactly one output, named `probability` (it looks the scores up by that
  name; ours are logits, the clients report them as they are);
- `BertQuestionAnswerer`: outputs named `end_logits` and `start_logits`, and inputs of the fixed
  shape `(1, 384)`: it always packs 384 tokens (`kMaxSeqLen`) and copies them into the input
  tensors without resizing them.

The schema's `BertTokenizerOptions` holds only the vocabulary: there is no casing field. Every
client lower-cases ASCII itself before its WordPiece (and keeps accents: `cliché` is not
`cliche` to it), so a cased model would receive ids it was not trained on: `populate` refuses
`lower_case=False` and records the casing in the vocabulary's description.
"""

import dataclasses
import io
import os
import zipfile

import flatbuffers
import numpy as np
from flatbuffers import table as flatbuffer_table
from tensorflow.lite.python import schema_py_generated as schema

KINDS = ("classifier", "question_answerer", "embedder", "tagger")
METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
VOCABULARY_FILE = "vocab.txt"
LABELS_FILE = "labels.txt"
# BertQuestionAnswerer's fixed input length (`kMaxSeqLen` in its sources).
QUESTION_ANSWERER_SEQUENCE_LENGTH = 384

# The model's input names (substrings of the converter's tensor names, such as
# `serving_default_token_ids:0`) -> the metadata names the clients look the inputs up by.
_INPUT_ROLES = {"token_ids": "ids", "segment_ids": "segment_ids", "padding_mask": "mask"}
_INPUT_DESCRIPTIONS = {
    "ids": "Token ids of `[CLS] text [SEP]` (question answering: `[CLS] question [SEP] "
           "context [SEP]`), zero-padded.",
    "mask": "1 for real tokens, 0 for padding.",
    "segment_ids": "0 for the first text, 1 for the second (the context).",
}

# === The schema's tables: field names in slot order ===
# A union takes two slots, `<name>_type` (ubyte) and `<name>` (the table).
# Tables whose fields we neither write nor read (ImageProperties, NormalizationOptions, ...)
# are left out.
_OFFSET, _BYTE = "offset", "byte"
_MODEL_METADATA = (
    ("name", _OFFSET), ("description", _OFFSET), ("version", _OFFSET),
    ("subgraph_metadata", _OFFSET), ("author", _OFFSET), ("license", _OFFSET),
    ("associated_files", _OFFSET), ("min_parser_version", _OFFSET),
)
_SUBGRAPH_METADATA = (
    ("name", _OFFSET), ("description", _OFFSET), ("input_tensor_metadata", _OFFSET),
    ("output_tensor_metadata", _OFFSET), ("associated_files", _OFFSET),
    ("input_process_units", _OFFSET), ("output_process_units", _OFFSET),
    ("input_tensor_groups", _OFFSET), ("output_tensor_groups", _OFFSET),
    ("custom_metadata", _OFFSET),
)
_TENSOR_METADATA = (
    ("name", _OFFSET), ("description", _OFFSET), ("dimension_names", _OFFSET),
    ("content", _OFFSET), ("process_units", _OFFSET), ("stats", _OFFSET),
    ("associated_files", _OFFSET),
)
_CONTENT = (("content_properties_type", _BYTE), ("content_properties", _OFFSET), ("range", _OFFSET))
_FEATURE_PROPERTIES = ()
_PROCESS_UNIT = (("options_type", _BYTE), ("options", _OFFSET))
_BERT_TOKENIZER_OPTIONS = (("vocab_file", _OFFSET),)
_ASSOCIATED_FILE = (
    ("name", _OFFSET), ("description", _OFFSET), ("type", _BYTE), ("locale", _OFFSET),
    ("version", _OFFSET),
)

# Union members and enum values, numbered as in the schema.
_CONTENT_PROPERTIES = ("NONE", "FeatureProperties", "ImageProperties", "BoundingBoxProperties",
                       "AudioProperties")
_PROCESS_UNIT_OPTIONS = ("NONE", "NormalizationOptions", "ScoreCalibrationOptions",
                         "ScoreThresholdingOptions", "BertTokenizerOptions",
                         "SentencePieceTokenizerOptions", "RegexTokenizerOptions")
_ASSOCIATED_FILE_TYPES = ("UNKNOWN", "DESCRIPTIONS", "TENSOR_AXIS_LABELS", "TENSOR_VALUE_LABELS",
                          "TENSOR_AXIS_SCORE_CALIBRATION", "VOCABULARY", "SCANN_INDEX_FILE")

# The schema version that introduced each feature we write (its "History"); the file's
# `min_parser_version` is the newest of those used, at least 1.0.0.
_BASE_PARSER_VERSION = (1, 0, 0)
_VOCABULARY_FILE_VERSION = (1, 0, 1)
_INPUT_PROCESS_UNITS_VERSION = (1, 1, 0)
_BERT_TOKENIZER_VERSION = (1, 1, 0)

# Fixed zip entry times, so that the same model and files give the same bytes.
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
# The converter aligns buffers to 16 bytes (`force_align: 16` in TFLite's schema).
_BUFFER_ALIGNMENT = 16


@dataclasses.dataclass
class ModelInfo:
    """What the metadata says about the model, shown by model viewers and app tooling.

    Args:
        name: str. Short name of the model (required).
        description: str. What it does and what its inputs and outputs mean.
        version: str. Version of the model, chosen by its author.
        author: str. Who made it.
        license: str. The license the model is distributed under.
    """

    name: str
    description: str = ""
    version: str = ""
    author: str = ""
    license: str = ""


# === Writing ===


def populate(model_content, *, kind, model_info, vocabulary_path, lower_case, labels=None):
    """Returns `model_content` with TFLite Model Metadata and its associated files.

    Args:
        model_content: bytes. A token-id `.tflite` file: int32 inputs whose names contain
            `token_ids`, `segment_ids` and `padding_mask`, without metadata.
        kind: str. One of `KINDS`: `"classifier"` (one output, the label file),
            `"question_answerer"` (outputs whose names contain `start` and `end`, inputs of
            shape `(1, 384)`), `"embedder"` (one output, the embedding), `"tagger"` (one
            output, per-token logits over the tag label file).
        model_info: `ModelInfo`.
        vocabulary_path: str. The WordPiece vocabulary the model's token ids come from.
        lower_case: bool. Whether the vocabulary is uncased (must be `True`: the clients
            lower-case every text).
        labels: list of str. Class names (classifier) or tag names (tagger), in output order;
            required for those kinds, refused for the others.

    Returns:
        bytes: the model flatbuffer with a `TFLITE_METADATA` buffer, followed by a zip of
        `vocab.txt` (and `labels.txt`).

    Raises:
        ValueError: naming the argument, for an unknown `kind`, missing or extra `labels`, a
        cased vocabulary, a vocabulary without `[CLS]`/`[SEP]`, a model without the three
        inputs or with other outputs than `kind` has, or a model that already has metadata.
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` ({kind!r}) must be one of {', '.join(KINDS)}.")
    _check_model_info(model_info)
    if lower_case is not True:
        raise ValueError(
            f"`lower_case` ({lower_case!r}) must be True: TFLite Model Metadata has no casing "
            "option, and MediaPipe and the LiteRT Task Library lower-case every text before "
            "their WordPiece, so a cased model would receive ids it was not trained on."
        )
    vocabulary = _read_vocabulary(vocabulary_path)
    labels = _check_labels(kind, labels)

    is_model = isinstance(model_content, (bytes, bytearray)) and len(model_content) > 8
    if not is_model or not flatbuffers.util.BufferHasIdentifier(model_content, 0, b"TFL3"):
        raise ValueError("`model_content` must be the bytes of a .tflite file (identifier TFL3).")
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_content), 0)
    if any(_text(entry.name) == METADATA_NAME for entry in model.metadata or []):
        raise ValueError(
            f"`model_content` already has TFLite Model Metadata ({METADATA_NAME}); populate "
            "the file the converter wrote."
        )
    if any(buffer.offset > 1 for buffer in model.buffers):
        raise ValueError(
            "`model_content` keeps its weights outside the flatbuffer (a model over 2 GB); "
            "such files are not supported."
        )
    subgraph = model.subgraphs[0]
    input_roles = _input_roles(model, subgraph)
    if kind == "question_answerer":
        _check_question_answerer_shapes(subgraph)
    output_roles = _output_roles(kind, model, subgraph, labels)

    metadata_buffer = _metadata_flatbuffer(model_info, input_roles, output_roles, kind)
    _attach(model, metadata_buffer)
    builder = flatbuffers.Builder(len(model_content) + len(metadata_buffer) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    files = {VOCABULARY_FILE: vocabulary}
    if labels is not None:
        files[LABELS_FILE] = ("\n".join(labels) + "\n").encode("utf-8")
    return _append_zip(bytes(builder.Output()), files)


def _check_model_info(model_info):
    if not isinstance(model_info, ModelInfo):
        raise ValueError(
            f"`model_info` must be a metadata.ModelInfo, got {type(model_info).__name__}."
        )
    for field in dataclasses.fields(ModelInfo):
        value = getattr(model_info, field.name)
        if not isinstance(value, str):
            raise ValueError(f"`model_info.{field.name}` ({value!r}) must be a string.")
    if not model_info.name.strip():
        raise ValueError(f"`model_info.name` ({model_info.name!r}) must not be empty.")


def _read_vocabulary(vocabulary_path):
    if not isinstance(vocabulary_path, (str, os.PathLike)) or not os.path.isfile(vocabulary_path):
        raise ValueError(f"`vocabulary_path` ({vocabulary_path!r}) is not a file.")
    with open(vocabulary_path, "rb") as f:
        content = f.read()
    tokens = set(content.decode("utf-8").splitlines())
    missing = [token for token in ("[CLS]", "[SEP]") if token not in tokens]
    if missing:
        raise ValueError(
            f"`vocabulary_path` ({vocabulary_path!r}) lacks {' and '.join(missing)}: the "
            "clients pack every text as `[CLS] ... [SEP]`."
        )
    return content


def _check_labels(kind, labels):
    if kind not in ("classifier", "tagger"):
        if labels is not None:
            raise ValueError(f"`labels` must be None for kind {kind!r}, got {labels!r}.")
        return None
    if labels is None or isinstance(labels, str) or len(labels) == 0:
        raise ValueError(f"`labels` ({labels!r}) must be a non-empty list of names for kind "
                         f"{kind!r}.")
    labels = list(labels)
    for label in labels:
        if not isinstance(label, str) or not label or "\n" in label or "\r" in label:
            raise ValueError(
                f"`labels` entry {label!r} must be a non-empty string without line breaks."
            )
    return labels


def _text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else (value or "")


def _signature_keys(model):
    """`{tensor index: name}` of the first subgraph's signature inputs and outputs.

    The converter names output tensors `StatefulPartitionedCall:0`, ...; the names the model
    gave them (`start_logits`) are the keys of the file's SignatureDef.
    """
    keys = {}
    for signature in model.signatureDefs or []:
        if signature.subgraphIndex != 0:
            continue
        for tensor_map in (signature.inputs or []) + (signature.outputs or []):
            keys[tensor_map.tensorIndex] = _text(tensor_map.name)
    return keys


def _names(model, subgraph, indices):
    """`"signature key (tensor name)"`-style names of tensors, what the roles are found by."""
    keys = _signature_keys(model)
    return [
        " ".join(filter(None, (keys.get(i), _text(subgraph.tensors[i].name)))) for i in indices
    ]


def _input_roles(model, subgraph):
    """`[(metadata name, model's name)]` in the model's input order."""
    names = _names(model, subgraph, subgraph.inputs)
    roles = []
    for index, name in zip(subgraph.inputs, names):
        matches = {role for key, role in _INPUT_ROLES.items() if key in name}
        if len(matches) == 1 and subgraph.tensors[index].type == schema.TensorType.INT32:
            roles.append((matches.pop(), name))
    if len(names) != 3 or sorted(role for role, _ in roles) != sorted(_INPUT_ROLES.values()):
        raise ValueError(
            "`model_content` must take exactly three int32 inputs named after token_ids, "
            f"segment_ids and padding_mask; its inputs are {names}."
        )
    return roles


def _output_roles(kind, model, subgraph, labels):
    """`[(metadata name, model's name, label file or None)]` in the model's output order."""
    names = _names(model, subgraph, subgraph.outputs)
    if kind == "question_answerer":
        roles = []
        for name in names:
            matches = [role for role in ("start_logits", "end_logits")
                       if role.split("_")[0] in name.lower()]
            if len(matches) == 1:
                roles.append((matches[0], name, None))
        if len(names) != 2 or sorted(role for role, _, _ in roles) != ["end_logits",
                                                                       "start_logits"]:
            raise ValueError(
                "`model_content` of kind 'question_answerer' must have two outputs whose "
                f"names contain `start` and `end`; its outputs are {names}."
            )
        return roles
    if len(names) != 1:
        raise ValueError(
            f"`model_content` of kind {kind!r} must have exactly one output; its outputs are "
            f"{names}."
        )
    if labels is not None:
        shape = subgraph.tensors[subgraph.outputs[0]].shape
        width = int(shape[-1]) if shape is not None and len(shape) else -1
        if width > 0 and width != len(labels):
            raise ValueError(
                f"`labels` has {len(labels)} names but the output {names[0]!r} has {width} "
                "scores per position."
            )
    role = {"classifier": "probability", "embedder": "embedding", "tagger": "logits"}[kind]
    return [(role, names[0], LABELS_FILE if labels is not None else None)]


def _check_question_answerer_shapes(subgraph):
    expected = [1, QUESTION_ANSWERER_SEQUENCE_LENGTH]
    for index in subgraph.inputs:
        tensor = subgraph.tensors[index]
        shape = [int(d) for d in (tensor.shapeSignature if tensor.shapeSignature is not None
                                  else tensor.shape)]
        if shape != expected:
            raise ValueError(
                f"`model_content` of kind 'question_answerer' must take inputs of the fixed "
                f"shape {tuple(expected)} (BertQuestionAnswerer always packs "
                f"{QUESTION_ANSWERER_SEQUENCE_LENGTH} tokens); {_text(tensor.name)!r} has "
                f"{tuple(shape)}."
            )


def _output_description(kind, role):
    return {
        "probability": "Logits of the labels in labels.txt, (1, num_classes); no softmax "
                       "applied (the name is the one BertNLClassifier looks up).",
        "start_logits": "Score of each position as the first token of the answer, "
                        "(1, sequence_length).",
        "end_logits": "Score of each position as the last token of the answer, "
                      "(1, sequence_length).",
        "embedding": "Sentence embedding, (1, hidden_dim).",
        "logits": "Logits of the tags in labels.txt for each token, (1, sequence_length, "
                  "num_tags).",
    }[role]


def _metadata_flatbuffer(model_info, input_roles, output_roles, kind):
    """The ModelMetadata flatbuffer (file identifier `M001`)."""
    b = flatbuffers.Builder(1024)

    def string(value):
        return b.CreateString(value) if value else None

    def table(fields, **values):
        # Children (strings, vectors, tables) are already in the buffer; a table refers to them.
        b.StartObject(len(fields))
        for slot, (name, field_type) in enumerate(fields):
            value = values.pop(name, None)
            if value is None:
                continue
            if field_type == _BYTE:
                b.PrependUint8Slot(slot, value, 0)
            else:
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
        if values:
            raise AssertionError(f"fields not in the table: {sorted(values)}")
        return b.EndObject()

    def vector(offsets):
        b.StartVector(4, len(offsets), 4)
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return b.EndVector()

    def associated_file(name, description, file_type):
        return table(_ASSOCIATED_FILE, name=string(name), description=string(description),
                     type=_ASSOCIATED_FILE_TYPES.index(file_type))

    def feature_content():
        properties = table(_FEATURE_PROPERTIES)
        return table(_CONTENT,
                     content_properties_type=_CONTENT_PROPERTIES.index("FeatureProperties"),
                     content_properties=properties)

    vocabulary = associated_file(
        VOCABULARY_FILE,
        "WordPiece vocabulary of the uncased tokenizer (texts are lower-cased), one token a "
        "line; the line number is the token id.",
        "VOCABULARY",
    )
    tokenizer = table(_PROCESS_UNIT,
                      options_type=_PROCESS_UNIT_OPTIONS.index("BertTokenizerOptions"),
                      options=table(_BERT_TOKENIZER_OPTIONS, vocab_file=vector([vocabulary])))
    inputs = [
        table(_TENSOR_METADATA, name=string(role), description=string(_INPUT_DESCRIPTIONS[role]))
        for role, _ in input_roles
    ]
    outputs = []
    for role, _, label_file in output_roles:
        files = None
        if label_file is not None:
            names = "tags" if kind == "tagger" else "classes"
            files = vector([associated_file(
                label_file, f"Names of the {names}, one a line, in output order.",
                "TENSOR_AXIS_LABELS")])
        outputs.append(table(
            _TENSOR_METADATA, name=string(role),
            description=string(_output_description(kind, role)),
            content=feature_content(), associated_files=files,
        ))
    subgraph = table(
        _SUBGRAPH_METADATA, name=string(model_info.name),
        input_tensor_metadata=vector(inputs), output_tensor_metadata=vector(outputs),
        input_process_units=vector([tokenizer]),
    )
    # Written above: a VOCABULARY file, input_process_units, a BertTokenizerOptions unit.
    min_version = max(_BASE_PARSER_VERSION, _VOCABULARY_FILE_VERSION,
                      _INPUT_PROCESS_UNITS_VERSION, _BERT_TOKENIZER_VERSION)
    root = table(
        _MODEL_METADATA, name=string(model_info.name),
        description=string(model_info.description), version=string(model_info.version),
        subgraph_metadata=vector([subgraph]), author=string(model_info.author),
        license=string(model_info.license),
        min_parser_version=string(".".join(str(part) for part in min_version)),
    )
    b.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


class _AlignedBufferT(schema.BufferT):
    """A model buffer packed on a 16-byte boundary, as the converter writes buffers."""

    def Pack(self, builder):  # pylint: disable=invalid-name (the object API's name)
        data = None
        if self.data is not None and len(self.data):
            payload = np.asarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), _BUFFER_ALIGNMENT)
            builder.head -= len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        schema.BufferAddOffset(builder, self.offset)
        schema.BufferAddSize(builder, self.size)
        return schema.BufferEnd(builder)


def _aligned(buffer):
    aligned = _AlignedBufferT()
    aligned.data, aligned.offset, aligned.size = buffer.data, buffer.offset, buffer.size
    return aligned


def _attach(model, metadata_buffer):
    """Adds `metadata_buffer` as a new buffer named by a `TFLITE_METADATA` metadata entry."""
    model.buffers = [_aligned(buffer) for buffer in model.buffers]
    buffer = _AlignedBufferT()
    buffer.data = np.frombuffer(metadata_buffer, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = list(model.metadata or []) + [entry]


def _append_zip(model_content, files):
    """`model_content` followed by a zip archive of `files` ({name: bytes}), stored.

    The zip's offsets count from the start of the file, as when the populator opens the
    `.tflite` file in append mode; the archive is written in "w" mode on a stream positioned
    after the model, which gives the same bytes without first searching the weights for a zip
    end record that random bytes could happen to spell.
    """
    stream = io.BytesIO()
    stream.write(model_content)
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=_ZIP_DATE_TIME), content)
    return stream.getvalue()


# === Reading ===


def read(model_content_or_path):
    """What a file's TFLite Model Metadata and its zip hold (the manifest records this).

    Args:
        model_content_or_path: bytes, or the path of a `.tflite` file.

    Returns:
        dict: `name`, `description`, `version`, `author`, `license`, `min_parser_version`;
        `inputs` and `outputs` (lists of `{"name", "description", "tensor", "signature_key",
        "associated_files"}` in the model's order: `tensor` is the model's tensor name,
        `signature_key` its name in the SignatureDef); `input_process_units` (lists of
        `{"type", "vocab_files"}`); `associated_files` (`{"name", "type"}` of every file the
        metadata names); `zip_files` (the names in the appended zip).

    Raises:
        ValueError: the file has no TFLite Model Metadata.
    """
    if isinstance(model_content_or_path, (str, os.PathLike)):
        with open(model_content_or_path, "rb") as f:
            content = f.read()
    else:
        content = bytes(model_content_or_path)
    model = schema.Model.GetRootAs(content, 0)
    buffer_data = None
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _text(entry.Name()) == METADATA_NAME:
            buffer = model.Buffers(entry.Buffer())
            if buffer.Offset() > 1:
                buffer_data = content[buffer.Offset():buffer.Offset() + buffer.Size()]
            else:
                buffer_data = buffer.DataAsNumpy().tobytes()
    if buffer_data is None:
        raise ValueError(
            f"`model_content_or_path` has no TFLite Model Metadata ({METADATA_NAME})."
        )
    if not flatbuffers.util.BufferHasIdentifier(buffer_data, 0, FILE_IDENTIFIER):
        raise ValueError(
            "`model_content_or_path`'s metadata buffer is not a ModelMetadata flatbuffer "
            f"(file identifier {FILE_IDENTIFIER.decode()})."
        )
    root = _TableReader(buffer_data, flatbuffers.encode.Get(
        flatbuffers.packer.uoffset, buffer_data, 0))
    subgraph = model.Subgraphs(0)
    keys = {}
    for i in range(model.SignatureDefsLength()):
        signature = model.SignatureDefs(i)
        if signature.SubgraphIndex() == 0:
            for tensor_map in ([signature.Inputs(j) for j in range(signature.InputsLength())]
                               + [signature.Outputs(j) for j in range(signature.OutputsLength())]):
                keys[tensor_map.TensorIndex()] = _text(tensor_map.Name())
    model_tensors = {
        "inputs": [subgraph.Inputs(i) for i in range(subgraph.InputsLength())],
        "outputs": [subgraph.Outputs(i) for i in range(subgraph.OutputsLength())],
    }
    result = {
        name: root.string(_MODEL_METADATA, name)
        for name in ("name", "description", "version", "author", "license",
                     "min_parser_version")
    }
    files = [_read_file(f) for f in root.tables(_MODEL_METADATA, "associated_files")]
    subgraphs = root.tables(_MODEL_METADATA, "subgraph_metadata")
    first = subgraphs[0] if subgraphs else None
    for side, slot in (("inputs", "input_tensor_metadata"), ("outputs", "output_tensor_metadata")):
        result[side] = []
        tensors = first.tables(_SUBGRAPH_METADATA, slot) if first else []
        for i, tensor in enumerate(tensors):
            tensor_files = [_read_file(f) for f in tensor.tables(_TENSOR_METADATA,
                                                                 "associated_files")]
            files += tensor_files
            index = model_tensors[side][i] if i < len(model_tensors[side]) else None
            result[side].append({
                "name": tensor.string(_TENSOR_METADATA, "name"),
                "description": tensor.string(_TENSOR_METADATA, "description"),
                "tensor": None if index is None else _text(subgraph.Tensors(index).Name()),
                "signature_key": keys.get(index),
                "associated_files": [f["name"] for f in tensor_files],
            })
    result["input_process_units"] = []
    units = first.tables(_SUBGRAPH_METADATA, "input_process_units") if first else []
    for unit in units:
        unit_type = _PROCESS_UNIT_OPTIONS[unit.byte(_PROCESS_UNIT, "options_type")]
        vocab_files = []
        if unit_type == "BertTokenizerOptions":
            options = unit.table(_PROCESS_UNIT, "options")
            vocab_files = [_read_file(f) for f in options.tables(_BERT_TOKENIZER_OPTIONS,
                                                                 "vocab_file")]
            files += vocab_files
        result["input_process_units"].append(
            {"type": unit_type, "vocab_files": [f["name"] for f in vocab_files]}
        )
    if first:
        files += [_read_file(f) for f in first.tables(_SUBGRAPH_METADATA, "associated_files")]
    result["associated_files"] = files
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            result["zip_files"] = archive.namelist()
    except zipfile.BadZipFile:
        result["zip_files"] = []
    return result


def _read_file(reader):
    return {
        "name": reader.string(_ASSOCIATED_FILE, "name"),
        "type": _ASSOCIATED_FILE_TYPES[reader.byte(_ASSOCIATED_FILE, "type")],
    }


class _TableReader:
    """Reads one table of a flatbuffer by field slot (flatbuffers' Table API)."""

    def __init__(self, buffer, position):
        self._buffer = buffer
        self._table = flatbuffer_table.Table(buffer, position)

    def _offset(self, fields, name):
        slot = [field for field, _ in fields].index(name)
        # The vtable holds a 2-byte offset per slot after its own size and the table's size.
        return self._table.Offset(4 + 2 * slot)

    def string(self, fields, name):
        offset = self._offset(fields, name)
        if not offset:
            return None
        return self._table.String(offset + self._table.Pos).decode("utf-8")

    def byte(self, fields, name):
        offset = self._offset(fields, name)
        if not offset:
            return 0
        return self._table.Get(flatbuffers.number_types.Uint8Flags, offset + self._table.Pos)

    def table(self, fields, name):
        offset = self._offset(fields, name)
        if not offset:
            return None
        return _TableReader(self._buffer, self._table.Indirect(offset + self._table.Pos))

    def tables(self, fields, name):
        offset = self._offset(fields, name)
        if not offset:
            return []
        start = self._table.Vector(offset)
        return [
            _TableReader(self._buffer, self._table.Indirect(start + 4 * i))
            for i in range(self._table.VectorLen(offset))
        ]
