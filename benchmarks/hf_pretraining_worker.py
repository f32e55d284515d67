"""The Hugging Face side of `python -m benchmarks.pretraining_throughput`, in its own process.

Run by the Python of `.venv-torch` (`scripts/setup_torch.sh`); imports only torch,
transformers, numpy and the standard library, never the project:

    .venv-torch/bin/python benchmarks/hf_pretraining_worker.py SETTINGS.json BATCHES.npz

SETTINGS.json holds `config` (the `transformers.BertConfig` arguments), `learning_rate`,
`beta_1`, `beta_2`, `epsilon`, `weight_decay`, `clipnorm`, `batch_size`, `num_threads` and
`seed`; BATCHES.npz holds the examples both sides train on (`token_ids`, `segment_ids`,
`padding_mask`, `mlm_labels` (-100 where nothing is predicted), `next_sentence_label`), cut into
consecutive batches of `batch_size`.

Protocol, one JSON object per line. The worker first writes
`{"ready": true, "torch": ..., "transformers": ..., "num_threads": ..., "parameters": ...}`;
then for each line `{"run": K}` on stdin it runs K training steps (batches 0, 1, ... of the
file, cycling) and writes `{"seconds": S}`, the wall time of those K steps; `{"quit": true}` or
the end of stdin ends it. A step is what a PyTorch user writes: `model.train()`, the forward
pass with `labels` and `next_sentence_label` (the model's own loss), `loss.backward()`,
`clip_grad_norm_`, `AdamW.step()`, `zero_grad()`.
"""

import json
import sys
import time

import numpy as np
import torch
import transformers


def _reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _batches(path, batch_size):
    """The examples of `path` as a list of dicts of int64 tensors, `batch_size` rows each."""
    with np.load(path) as arrays:
        columns = {
            "input_ids": arrays["token_ids"],
            "token_type_ids": arrays["segment_ids"],
            "attention_mask": arrays["padding_mask"],
            "labels": arrays["mlm_labels"],
            "next_sentence_label": arrays["next_sentence_label"],
        }
    num_examples = len(columns["input_ids"])
    return [
        {
            name: torch.from_numpy(value[start:start + batch_size].astype(np.int64))
            for name, value in columns.items()
        }
        for start in range(0, num_examples - batch_size + 1, batch_size)
    ]


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: hf_pretraining_worker.py SETTINGS.json BATCHES.npz")
    with open(argv[1], encoding="utf-8") as f:
        settings = json.load(f)
    torch.set_num_threads(settings["num_threads"])
    torch.manual_seed(settings["seed"])
    batches = _batches(argv[2], settings["batch_size"])
    model = transformers.BertForPreTraining(transformers.BertConfig(**settings["config"]))
    model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=settings["learning_rate"],
        betas=(settings["beta_1"], settings["beta_2"]),
        eps=settings["epsilon"],
        weight_decay=settings["weight_decay"],
    )

    def step(batch):
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings["clipnorm"])
        optimizer.step()
        optimizer.zero_grad()
        return loss

    _reply(
        {
            "ready": True,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "num_threads": torch.get_num_threads(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "attention": getattr(model.config, "_attn_implementation", None),
        }
    )
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        steps = int(request["run"])
        start = time.perf_counter()
        for index in range(steps):
            loss = step(batches[index % len(batches)])
        seconds = time.perf_counter() - start
        _reply({"seconds": seconds, "loss": float(loss)})


if __name__ == "__main__":
    main(sys.argv)
