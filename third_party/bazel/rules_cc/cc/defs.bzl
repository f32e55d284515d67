"""Offline stand-in for @rules_cc//cc:defs.bzl on Bazel 4.2.3.

Each macro forwards to the rule built into Bazel. The names are the ones that
@bazel_tools loads from @rules_cc (tools/cpp, tools/jdk, tools/objc, ...).
"""

def cc_binary(**kwargs):
    native.cc_binary(**kwargs)

def cc_library(**kwargs):
    native.cc_library(**kwargs)

def cc_proto_library(**kwargs):
    native.cc_proto_library(**kwargs)

def cc_test(**kwargs):
    native.cc_test(**kwargs)

def cc_toolchain(**kwargs):
    native.cc_toolchain(**kwargs)

def cc_toolchain_suite(**kwargs):
    native.cc_toolchain_suite(**kwargs)

def objc_library(**kwargs):
    native.objc_library(**kwargs)
