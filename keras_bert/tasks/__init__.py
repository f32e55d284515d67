"""Fine-tuning tasks: reading their files, turning them into model inputs, scoring predictions.

- `classification`: TSV/CSV/JSONL rows of text (and text pair) with a class or a number.
- `question_answering`: SQuAD v1.1 JSON; windows over long contexts; exact match and F1.
- `token_classification`: CoNLL files of word/tag lines; first-piece labels; entity F1.
"""
