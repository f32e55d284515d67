"""`keras_bert.utils.cli`: one-line command-line errors and deprecated flag aliases."""

import os
import subprocess
import sys
import textwrap

import pytest
from absl import flags

from keras_bert.utils import cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


@pytest.fixture(autouse=True)
def no_typed_aliases(monkeypatch):
    monkeypatch.setattr(cli, "_TYPED_AS", {})


@pytest.fixture
def flag_values():
    """A private `FlagValues` (never the global one) with the flags of a small app."""
    values = flags.FlagValues()
    flags.DEFINE_string("model_dir", None, "Directory.", flag_values=values)
    flags.DEFINE_string("train", None, "Training file.", flag_values=values)
    flags.DEFINE_float("learning_rate", 1e-3, "Rate.", flag_values=values)
    flags.DEFINE_integer("sequence_length", 128, "Length.", flag_values=values)
    flags.DEFINE_bool("overwrite", False, "Replace.", flag_values=values)
    cli.define_deprecated_alias("max_seq_length", "sequence_length", flag_values=values)
    flags.register_validator(
        "learning_rate", lambda value: value > 0, "must be positive.", flag_values=values
    )
    flags.register_validator(
        "sequence_length", lambda value: value >= 3, "must be >= 3.", flag_values=values
    )
    return values


def test_flag_error_names_the_flag_and_its_value():
    error = cli.FlagError("--model_dir", "/tmp/x", "not a directory.")
    assert isinstance(error, ValueError)
    assert str(error) == "`--model_dir` ('/tmp/x'): not a directory."
    assert (error.flag, error.value, error.message) == ("model_dir", "/tmp/x", "not a directory.")
    assert str(cli.FlagError("learning_rate", -1.0, "must be positive.")) == (
        "`--learning_rate` (-1.0): must be positive."
    )
    assert str(cli.FlagError("calibration_data", None, "required.")) == (
        "`--calibration_data`: required."
    )
    assert str(cli.FlagError("corpus", ["a.txt"], "not a file.")) == (
        "`--corpus` ('a.txt'): not a file."
    )


def test_flag_context_turns_value_and_os_errors_into_flag_errors(flag_values):
    flag_values(["prog", "--train=data/train.tsv"])
    with pytest.raises(cli.FlagError) as raised:
        with cli.flag_context("train", flag_values=flag_values):
            raise ValueError("data/train.tsv:3: expected 2 TSV columns, found 1.")
    assert str(raised.value) == (
        "`--train` ('data/train.tsv'): data/train.tsv:3: expected 2 TSV columns, found 1."
    )
    missing = "/nonexistent/train.tsv"
    with pytest.raises(cli.FlagError) as raised:
        with cli.flag_context("--train", missing, flag_values=flag_values):
            open(missing, encoding="utf-8")  # pylint: disable=consider-using-with
    assert str(raised.value) == f"`--train` ('{missing}'): No such file or directory: '{missing}'"
    with pytest.raises(TypeError):  # a bug, not bad input
        with cli.flag_context("train", flag_values=flag_values):
            raise TypeError("unsupported operand")


def test_check_paths_names_the_first_missing_directory_then_file(flag_values, tmp_path):
    data = tmp_path / "train.tsv"
    data.write_text("sentence\tlabel\n")
    flag_values(["app", f"--model_dir={tmp_path}", f"--train={data}"])
    cli.check_paths(directories=["model_dir"], files=["train"], flag_values=flag_values)
    flag_values["train"].value = str(tmp_path)  # a directory where a file is wanted
    with pytest.raises(cli.FlagError, match=r"^`--train` \('.*'\): not a file\.$"):
        cli.check_paths(directories=["model_dir"], files=["train"], flag_values=flag_values)
    flag_values["model_dir"].value = str(tmp_path / "missing")
    with pytest.raises(cli.FlagError, match=r"^`--model_dir` \('.*missing'\): not a directory"):
        cli.check_paths(directories=["model_dir"], files=["train"], flag_values=flag_values)
    flag_values["model_dir"].value = None  # unset flags are not checked
    with pytest.raises(cli.FlagError, match=r"`--train`"):
        cli.check_paths(directories=["model_dir"], files=["train"], flag_values=flag_values)


def test_deprecated_alias_forwards_its_value_and_is_named_as_typed(flag_values):
    flag_values(["prog", "--max_seq_length=16"])
    assert flag_values.sequence_length == 16 and flag_values.max_seq_length == 16
    assert flag_values["sequence_length"].present
    assert cli.typed_name("sequence_length") == "max_seq_length"
    assert str(cli.FlagError("sequence_length", 16, "too long.")) == (
        "`--max_seq_length` (16): too long."
    )


def test_deprecated_alias_logs_a_warning(flag_values):
    flag_values(["prog", "--max_seq_length=16"])
    with pytest.MonkeyPatch.context() as patch:
        warnings = []
        patch.setattr(cli.logging, "warning", lambda *args: warnings.append(args[0] % args[1:]))
        cli.warn_deprecated_aliases()
    assert warnings == ["--max_seq_length is deprecated: use --sequence_length."]


def test_unused_alias_changes_nothing(flag_values):
    flag_values(["prog", "--sequence_length=64"])
    assert flag_values.max_seq_length == 64
    assert cli.typed_name("sequence_length") == "sequence_length"


def test_parse_errors_are_one_line_and_exit_2(flag_values, capsys):
    cases = [
        (["--learning_rate=-1"], "ValueError: `--learning_rate` (-1.0): must be positive.\n"),
        (["--learning_rate=abc"], "ValueError: `--learning_rate` ('abc'): could not convert "
                                  "string to float: 'abc'\n"),
        (["--max_seq_length=2"], "ValueError: `--max_seq_length` (2): must be >= 3.\n"),
        (["--no_such_flag=1"], "UnrecognizedFlagError: Unknown command line flag "
                               "'no_such_flag'\n"),
    ]
    for args, expected in cases:
        with pytest.raises(SystemExit) as raised:
            cli.parse_flags(["prog", *args], flag_values)
        assert raised.value.code == cli.USAGE_EXIT_CODE
        assert capsys.readouterr().err == expected
        flag_values.unparse_flags()
        cli._TYPED_AS.clear()  # pylint: disable=protected-access


def test_missing_required_flag_is_one_line(capsys):
    values = flags.FlagValues()
    flags.DEFINE_string("model_dir", None, "Directory.", flag_values=values, required=True)
    with pytest.raises(SystemExit):
        cli.parse_flags(["prog"], values)
    assert capsys.readouterr().err == "ValueError: `--model_dir`: required, but not given.\n"


def test_several_failed_validators_share_the_line(flag_values):
    with pytest.raises(flags.IllegalFlagValueError) as raised:
        flag_values(["prog", "--learning_rate=0", "--sequence_length=1"])
    assert cli.illegal_value_line(str(raised.value), flag_values) == (
        "`--learning_rate` (0.0): must be positive. `--sequence_length` (1): must be >= 3."
    )


def test_user_error_line_names_the_flag_or_returns_none(flag_values, tmp_path):
    train = str(tmp_path / "train.tsv")
    flag_values(["prog", f"--train={train}", "--model_dir=out"])

    def line(error, **kwargs):
        return cli.user_error_line(error, flag_values=flag_values, **kwargs)

    # A FlagError as it is.
    assert line(cli.FlagError("model_dir", "out", "not a directory.")) == (
        "`--model_dir` ('out'): not a directory."
    )
    # A message naming a flag in backticks (the apps' own checks).
    assert line(ValueError("`--model_dir` ('out') already holds a model.")) == (
        "`--model_dir` ('out') already holds a model."
    )
    assert line(ValueError("Pass `--nooverwrite` or not.")) == "Pass `--nooverwrite` or not."
    # A library argument that `flag_for` maps to its flag.
    assert line(ValueError("`peak_learning_rate` must be a positive number, received -1."),
                flag_for={"peak_learning_rate": "learning_rate"}) == (
        "`--learning_rate` must be a positive number, received -1."
    )
    assert line(ValueError("`sequence_length=2` leaves no room for `token_ids`."),
                flag_for={"sequence_length": "sequence_length"}) == (
        "`--sequence_length=2` leaves no room for `token_ids`."
    )
    # ... only to a flag of the program.
    assert line(ValueError("`quantize=int8` needs a file."),
                flag_for={"quantize": "quantize"}) is None
    # The value of an input flag: the file the error is about.
    inputs = {"input_flags": ["train", "model_dir"]}
    assert line(ValueError(f"{train}:3: expected 2 TSV columns, found 1."), **inputs) == (
        f"`--train` ('{train}'): {train}:3: expected 2 TSV columns, found 1."
    )
    assert line(FileNotFoundError(2, "No such file or directory", train), **inputs) == (
        f"`--train` ('{train}'): No such file or directory: '{train}'"
    )
    assert line(ValueError("out/label_map.json is not valid JSON."), **inputs) == (
        "`--model_dir` ('out'): out/label_map.json is not valid JSON."
    )
    # ... as a whole path, and only of an input flag.
    assert line(ValueError("Run without the cache."), **inputs) is None
    assert line(ValueError(f"{train}:3: expected 2 TSV columns, found 1.")) is None
    # A quoted positional argument.
    assert line(ValueError("The .tflite file 'a.tflite' does not exist."),
                arguments=["a.tflite"]) == "The .tflite file 'a.tflite' does not exist."
    # Anything else is a bug.
    assert line(ValueError("operands could not be broadcast together")) is None
    assert line(ValueError("`peak_learning_rate` must be positive.")) is None
    assert line(ValueError("'a.tflite' is odd.")) is None


def _run_app(tmp_path, *args):
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent("""
        from absl import flags
        from keras_bert.utils import cli

        flags.DEFINE_string("model_dir", None, "Directory.", required=True)
        flags.DEFINE_integer("sequence_length", 128, "Length.")
        cli.define_deprecated_alias("max_seq_length", "sequence_length")


        def check(argv):
            if flags.FLAGS.model_dir == "missing":
                raise cli.FlagError("model_dir", "missing", "not a directory.")


        def main(argv):
            if argv[1:] == ["bug"]:
                raise ValueError("internal state is broken")
            print("sequence_length", flags.FLAGS.sequence_length)


        if __name__ == "__main__":
            cli.run(main, check=check)
    """))
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=60,
        cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
    )


def test_run_reports_bad_input_in_one_line_and_keeps_tracebacks_for_bugs(tmp_path):
    bad = _run_app(tmp_path, "--model_dir=missing")
    assert bad.returncode == 2 and bad.stderr == (
        "ValueError: `--model_dir` ('missing'): not a directory.\n"
    )
    verbose = _run_app(tmp_path, "--model_dir=missing", "--verbosity=1")
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr
    assert verbose.stderr.endswith("ValueError: `--model_dir` ('missing'): not a directory.\n")
    bug = _run_app(tmp_path, "--model_dir=ok", "bug")
    assert bug.returncode == 1
    assert "Traceback" in bug.stderr and "ValueError: internal state is broken" in bug.stderr
    old = _run_app(tmp_path, "--model_dir=ok", "--max_seq_length=16")
    assert old.returncode == 0 and old.stdout == "sequence_length 16\n"
    assert "--max_seq_length is deprecated: use --sequence_length." in old.stderr
