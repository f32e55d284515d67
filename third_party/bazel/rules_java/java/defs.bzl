"""Offline stand-in for @rules_java//java:defs.bzl on Bazel 4.2.3.

Each macro forwards to the rule built into Bazel. The names are the ones that
@bazel_tools loads from @rules_java (tools/jdk, tools/build_defs/repo, ...).
"""

def java_binary(**kwargs):
    native.java_binary(**kwargs)

def java_import(**kwargs):
    native.java_import(**kwargs)

def java_library(**kwargs):
    native.java_library(**kwargs)

def java_proto_library(**kwargs):
    native.java_proto_library(**kwargs)

def java_runtime(**kwargs):
    native.java_runtime(**kwargs)

def java_toolchain(**kwargs):
    native.java_toolchain(**kwargs)
