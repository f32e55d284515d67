"""Reads pretraining corpora into documents of lines.

Two formats:

* `lines`: one sentence or paragraph per line, documents separated by blank lines (the format
  of google-research/bert's `create_pretraining_data.py`).
* `wikitext`: WikiText dumps, where a `= Title =` line starts an article; `= = Section = =`
  headings are skipped and blank lines are only paragraph breaks.

`auto` picks `wikitext` when the file has a `= Title =` line.
"""

import re

CORPUS_FORMATS = ("auto", "lines", "wikitext")

_WIKITEXT_TITLE = re.compile(r"^ ?= [^=].* = ?$")
_WIKITEXT_HEADING = re.compile(r"^ ?(= ){2,}.*( =){2,} ?$")


def _is_wikitext(lines):
    return any(_WIKITEXT_TITLE.match(line.rstrip("\n")) for line in lines)


def read_documents(path, corpus_format="auto"):
    """Reads one corpus file.

    Args:
        path: str. A UTF-8 text file.
        corpus_format: str. One of `"auto"`, `"lines"`, `"wikitext"`. Defaults to `"auto"`.

    Returns:
        list of documents, each a non-empty list of str (its lines, stripped).
    """
    if corpus_format not in CORPUS_FORMATS:
        raise ValueError(
            f"`corpus_format` must be one of {CORPUS_FORMATS}, received {corpus_format!r}."
        )
    with open(path, encoding="utf-8") as corpus_file:
        lines = corpus_file.readlines()
    if corpus_format == "auto":
        corpus_format = "wikitext" if _is_wikitext(lines) else "lines"

    documents = [[]]
    for line in lines:
        line = line.strip()
        if corpus_format == "wikitext":
            if _WIKITEXT_TITLE.match(line):
                documents.append([])
                continue
            if not line or _WIKITEXT_HEADING.match(line):
                continue
        elif not line:
            documents.append([])
            continue
        documents[-1].append(line)
    return [document for document in documents if document]
