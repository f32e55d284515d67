"""pytest_test: a py_test that runs the pytest file <name>.py."""

def pytest_test(name, deps = [], args = [], **kwargs):
    """Runs <name>.py with pytest, through //tests:pytest_main.py.

    Args:
      name: test name; the file is <name>.py in the same package.
      deps: py_library targets the file imports; //tests:test_case is added.
      args: more pytest arguments.
      **kwargs: size, tags, data, ... as for py_test.
    """
    src = name + ".py"
    native.py_test(
        name = name,
        srcs = [src, "//tests:pytest_main.py"],
        main = "//tests:pytest_main.py",
        args = ["$(location %s)" % src] + args,
        deps = deps + ["//tests:test_case"],
        **kwargs
    )
