"""Fine-tuning tasks and their registry: one module per task, one registry line per task.

- `classification`: TSV/CSV/JSONL rows of text (and text pair) with a class or a number.
- `question_answering`: SQuAD v1.1 JSON; windows over long contexts; exact match and F1.
- `token_classification`: CoNLL files of word/tag lines; first-piece labels; entity F1.
- `text_embedding`: sentence embeddings of a pretrained checkpoint (no fine-tuning;
  `write_model_dir` writes its model directory).
- `task`: the `Task` interface every task implements (see its module docstring).

`training.finetune`, `training.predict`, `export.saved_model`, `export.tflite` and
`export.check_arm64` find a task by name with `get_task(name)`; `training/README.md` says how
to add one.
"""

from keras_bert.tasks.classification import ClassificationTask
from keras_bert.tasks.question_answering import QuestionAnsweringTask
from keras_bert.tasks.task import ServingSpec
from keras_bert.tasks.task import Task
from keras_bert.tasks.text_embedding import TextEmbeddingTask
from keras_bert.tasks.token_classification import TokenClassificationTask

# The registry: task name (as `label_map.json` and `--task` spell it) -> `Task` subclass.
TASKS = {
    ClassificationTask.name: ClassificationTask,
    QuestionAnsweringTask.name: QuestionAnsweringTask,
    TokenClassificationTask.name: TokenClassificationTask,
    TextEmbeddingTask.name: TextEmbeddingTask,
}


def get_task(name):
    """The `Task` subclass registered as `name`.

    Raises:
        ValueError: naming `name` and the registered tasks when it is not one of them.
    """
    if name not in TASKS:
        raise ValueError(f"`task` must be one of {sorted(TASKS)}, received {name!r}.")
    return TASKS[name]


__all__ = [
    "ClassificationTask",
    "QuestionAnsweringTask",
    "ServingSpec",
    "TASKS",
    "Task",
    "TextEmbeddingTask",
    "TokenClassificationTask",
    "get_task",
]
