"""Main of every Bazel py_test: runs the pytest file given as argument."""

import os
import sys

import pytest

if __name__ == "__main__":
    args = ["-p", "no:cacheprovider", *sys.argv[1:]]
    if "XML_OUTPUT_FILE" in os.environ:  # Set by `bazel test`: per-case results.
        args.append("--junitxml=" + os.environ["XML_OUTPUT_FILE"])
    sys.exit(pytest.main(args))
