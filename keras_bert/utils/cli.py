"""Command-line errors in one line, and deprecated flag names that keep working.

Every absl app ends with

    if __name__ == "__main__":
        cli.run(main)

instead of `app.run(main)`. Bad input then ends the program with one line on stderr
that names the flag as the user typed it, its value and what is wrong, and exit
status 2, without a traceback:

    ValueError: `--model_dir` ('/tmp/missing'): not a directory.
    ValueError: `--learning_rate` (-1.0): must be positive.
    ValueError: `--train` ('bad.tsv'): bad.tsv:3: expected 2 TSV columns (sentence, label), found 1.

Bad input is:
- a flag parsing error: an unknown flag, a missing required flag, a value that
  does not parse, or a failed validator (`flags.register_validator`, which is
  where the checks that need no I/O belong);
- a `FlagError`, raised by the app's own checks (those that read the disk) or by
  `flag_context` around the code that reads one flag's file;
- an `app.UsageError` (bad positional arguments);
- a `ValueError` or `OSError` from the library that names a flag in backticks
  (`` `--train` ``), names a library argument that `flag_for` maps to a flag
  (`` `calibration_path` `` -> `--calibration_data`), mentions the value of one
  of the app's `input_flags` (the path of the file that is malformed), or quotes
  a positional argument (`'model.tflite'`).

Anything else is a bug and keeps its traceback; `--verbosity=1` (or higher)
prints the traceback of bad input too, before its line.

`define_deprecated_alias` keeps an old flag name working: it forwards the value
to the new flag and logs a deprecation warning when it is used.
"""

import contextlib
import os
import re
import sys
import traceback

from absl import app
from absl import flags
from absl import logging

USAGE_EXIT_CODE = 2

# New flag name -> the deprecated name it was given as on this command line.
_TYPED_AS = {}


class FlagError(ValueError):
    """Bad command-line input, named by its flag.

    `str(error)` is `` `--model_dir` ('/tmp/x'): not a directory. ``: the flag as
    typed (a deprecated alias if the user gave that), its value and the message.

    Args:
        flag: str. The flag's name, with or without the leading `--`.
        value: The flag's value (`None`: not given; shown without a value).
        message: str. What is wrong, e.g. `not a directory.`.
    """

    def __init__(self, flag, value, message):
        self.flag = flag.lstrip("-")
        self.value = value
        self.message = message
        super().__init__(f"{_flag_and_value(self.flag, value)}: {message}")


def _flag_and_value(flag, value):
    name = f"`--{typed_name(flag)}`"
    if value is None:
        return name
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    return f"{name} ({value!r})"


@contextlib.contextmanager
def flag_context(flag, value=None, flag_values=flags.FLAGS):
    """Reports a `ValueError` or `OSError` raised inside as bad input of `--flag`.

    Wrap the code that reads one flag's file:

        with cli.flag_context("train"):
            examples = read_examples(FLAGS.train)

    Args:
        flag: str. The flag's name, with or without the leading `--`.
        value: The value to show. Defaults to the flag's value.
        flag_values: The `FlagValues` holding the flag. Defaults to `flags.FLAGS`.

    Raises:
        FlagError: from a `ValueError` or `OSError` (other exceptions pass).
    """
    try:
        yield
    except FlagError:
        raise
    except (ValueError, OSError) as error:
        name = flag.lstrip("-")
        if value is None and name in flag_values:
            value = flag_values[name].value
        raise FlagError(name, value, _message(error)) from error


def check_paths(files=(), directories=(), flag_values=flags.FLAGS):
    """Raises `FlagError` for the first flag whose path is missing (unset flags pass).

    For an app's `check`: the directories are checked first, then the files, each in order.

    Args:
        files: sequence of str. Flags that must name an existing file.
        directories: sequence of str. Flags that must name an existing directory.
        flag_values: The `FlagValues`. Defaults to `flags.FLAGS`.
    """
    for names, exists, problem in (
        (directories, os.path.isdir, "not a directory."),
        (files, os.path.isfile, "not a file."),
    ):
        for name in names:
            path = flag_values[name].value
            if path is not None and not exists(path):
                raise FlagError(name, path, problem)


class _DeprecatedAlias(flags.Flag):
    """A flag that forwards its value to `original` and notes that it was used."""

    def __init__(self, name, original):
        self.original = original  # first: the constructor sets `value`, which forwards
        super().__init__(
            original.parser, original.serializer, name, original.default,
            f"Deprecated: use --{original.name}.", boolean=original.boolean,
        )

    def parse(self, argument):
        self.original.parse(argument)
        _TYPED_AS[self.original.name] = self.name

    def _parse_from_default(self, value):
        return value  # already parsed by the original flag

    @property
    def value(self):
        return self.original.value

    @value.setter
    def value(self, value):
        self.original.value = value


def define_deprecated_alias(name, original_name, flag_values=flags.FLAGS):
    """Defines `--name` as a deprecated spelling of `--original_name`.

    Unlike `flags.DEFINE_alias`, using it logs a warning (from `run`) that names
    the new flag. `FLAGS.name` reads and writes the original's value.

    Args:
        name: str. The old flag name.
        original_name: str. The flag it stands for (defined before).
        flag_values: The `FlagValues`. Defaults to `flags.FLAGS`.
    """
    original = flag_values[original_name]
    module_name = flag_values.find_module_defining_flag(original_name)
    flags.DEFINE_flag(_DeprecatedAlias(name, original), flag_values, module_name=module_name)


def typed_name(name):
    """`name`, or the deprecated alias of it that this command line used."""
    return _TYPED_AS.get(name, name)


def warn_deprecated_aliases():
    """Logs one warning per deprecated flag name on the command line."""
    for new, old in sorted(_TYPED_AS.items()):
        logging.warning("--%s is deprecated: use --%s.", old, new)


def run(main, flag_for=None, input_flags=(), check=None, argv=None):
    """`app.run(main)`, answering bad input with one line on stderr and exit status 2.

    Args:
        main: callable taking `argv` (the arguments left after the flags).
        flag_for: dict or None. Library argument names (as the library's
            `ValueError`s spell them in backticks) -> the flag that feeds them,
            e.g. `{"calibration_path": "calibration_data", "path": "model_dir"}`.
        input_flags: sequence of str. The flags naming files or directories that
            the program reads: an error that mentions one's value (a malformed
            line of `--train` names its file) is bad input of that flag. Not the
            outputs: an error that says where a backup is kept is no bad input.
        check: callable or None. Checks that need I/O (a missing file), run
            before `main` with the same `argv`; they raise `FlagError` (or
            `app.UsageError` for the positional arguments).
        argv: list of str or None. Defaults to `sys.argv`.
    """
    flag_for = dict(flag_for or {})
    input_flags = tuple(input_flags)

    def guarded_main(args):
        warn_deprecated_aliases()
        try:
            if check is not None:
                check(args)
            return main(args)
        except app.UsageError as error:
            _fail("UsageError", str(error), error)
        except (ValueError, OSError) as error:
            line = user_error_line(
                error, flag_for, input_flags=input_flags, arguments=args[1:]
            )
            if line is None:
                raise
            _fail(_builtin_kind(error), line, error)

    app.run(guarded_main, argv=argv, flags_parser=parse_flags)


def parse_flags(argv, flag_values=flags.FLAGS):
    """`flag_values(argv)`; a parsing error ends the program with one line and exit status 2."""
    try:
        return flag_values(argv)
    except FlagError as error:  # raised by a validator of several flags
        _fail("ValueError", str(error), error)
    except flags.IllegalFlagValueError as error:
        _fail("ValueError", illegal_value_line(str(error), flag_values), error)
    except flags.Error as error:
        _fail(type(error).__name__, _one_line(str(error)), error)


def illegal_value_line(message, flag_values=flags.FLAGS):
    """absl's `flag --name=value: problem` lines, in `FlagError`'s words."""
    lines = []
    for line in message.splitlines():
        match = re.fullmatch(r"flag --(\w+)=(.*?): (.*)", line.strip())
        if match is None:
            lines.append(line.strip())
            continue
        name, text, problem = match.groups()
        if problem == f"Flag --{name} must have a value other than None.":
            lines.append(str(FlagError(name, None, "required, but not given.")))
            continue
        value = text
        if name in flag_values and str(flag_values[name].value) == text:
            value = flag_values[name].value  # parsed: show it as a number, a list, ...
        lines.append(str(FlagError(name, value, problem)))
    return _one_line(" ".join(lines))


def user_error_line(error, flag_for=None, flag_values=flags.FLAGS, input_flags=(),
                    arguments=()):
    """The one line reporting `error` as bad input, or None (then it is a bug).

    Args:
        error: a `ValueError` or `OSError`.
        flag_for: dict or None. Library argument name -> flag name.
        flag_values: The `FlagValues`. Defaults to `flags.FLAGS`.
        input_flags: sequence of str. The flags naming files the program reads.
        arguments: sequence of str. The positional arguments of the command line.
    """
    if isinstance(error, FlagError):
        return _one_line(str(error))
    message = _message(error)
    for argument, flag in (flag_for or {}).items():
        message = re.sub(
            "`" + re.escape(argument) + r"(?=[`=])", f"`--{typed_name(flag.lstrip('-'))}",
            message,
        )
    if any(_is_flag(name, flag_values) for name in re.findall(r"`--(\w+)", message)):
        return _one_line(message)
    flag, value = _input_flag_of(error, message, flag_values, input_flags)
    if flag is not None:
        return _one_line(str(FlagError(flag, value, message)))
    # A positional argument (a file to read, a text) that the message quotes.
    if any(len(argument) >= 2 and repr(argument) in message for argument in arguments):
        return _one_line(message)
    return None


def _is_flag(name, flag_values):
    """Whether `--name` is a flag of the program (`--noname` too, for a boolean)."""
    return name in flag_values or (name.startswith("no") and name[2:] in flag_values)


def _input_flag_of(error, message, flag_values, input_flags):
    """The input flag whose value (a path) the error is about, and that value."""
    candidates = []
    for name in input_flags:
        flag = flag_values[name]
        values = flag.value if isinstance(flag.value, (list, tuple)) else [flag.value]
        # Comma-separated files (`--corpus=a.txt,b.txt`) count one by one.
        values = [part for value in values if isinstance(value, str)
                  for part in {value, *value.split(",")}]
        for value in values:
            if not isinstance(value, str) or len(value) < 2:
                continue
            for spelling in {value, os.path.abspath(value), os.path.realpath(value)}:
                # The value as a whole word or path (a file inside a directory counts).
                mentioned = re.search(
                    r"(?<![\w.\-/])" + re.escape(spelling) + r"(?![\w\-])", message
                )
                filename = getattr(error, "filename", None)
                if mentioned or (filename and os.fspath(filename) == spelling):
                    candidates.append((len(value), name, value))
    if not candidates:
        return None, None
    _, name, value = max(candidates)
    return name, value


def _message(error):
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.strerror}: {os.fspath(error.filename)!r}"
    return str(error) or type(error).__name__


def _one_line(text):
    return " ".join(text.split())


def _builtin_kind(error):
    """The built-in exception class of `error` (`ValueError`, `FileNotFoundError`, ...)."""
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins":
            return cls.__name__
    return type(error).__name__


def _verbose():
    try:
        return flags.FLAGS["verbosity"].value >= 1
    except (KeyError, flags.UnparsedFlagAccessError):
        return False


def _fail(kind, line, error):
    if _verbose():
        traceback.print_exception(error)
    sys.stderr.write(f"{kind}: {line}\n")
    sys.stderr.flush()
    sys.exit(USAGE_EXIT_CODE)
