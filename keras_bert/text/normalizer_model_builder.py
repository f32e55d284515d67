"""Builds a `tensorflow_text.FastBertNormalizer` model from an arbitrary code point mapping.

tensorflow-text only builds its normalizer model from ICU (NFKC case folding), which is not the
reference BERT normalization. Its op, however, takes the model as a plain uint8 tensor: a
`FastBertNormalizerModel` flatbuffer holding a darts-clone double-array trie from the UTF-8 bytes
of each changed code point to an encoded value, plus a pool of normalized strings. Writing that
flatbuffer ourselves lets the fast op (and its TFLite kernel) apply the exact reference mapping.

Facts used (tensorflow_text/core/kernels/fast_bert_normalizer.h and darts_clone_trie_wrapper.h):

* value = bit 30 "normalized string differs" | (pool offset << 6) | utf-8 length (< 64);
  code point 0 is not in the trie, its value is stored in `data_for_codepoint_zero`.
* trie unit (uint32): bits 0-7 label, bit 8 "has leaf", bit 9 "offset shifted by 8",
  bits 10-31 offset; a leaf (value) unit has bit 31 set and the value in bits 0-30.
* traversal: `child = node ^ offset(unit[node]) ^ byte`, valid iff `label(unit[child]) == byte`;
  the value of a node with "has leaf" is at `node ^ offset(unit[node])`.

Identical subtrees (for example whole blocks of private-use code points, all dropped) share one
block of children, so the trie for ~150k keys stays small.
"""

import flatbuffers
import numpy as np

_DIFFERENT_BIT = 0x40000000
_LENGTH_BITS = 6
_MAX_NORMALIZED_BYTES = (1 << _LENGTH_BITS) - 1
_MAX_POOL_OFFSET = (1 << (32 - 2 - _LENGTH_BITS)) - 1
_LEAF_BIT = 0x80000000
_HAS_LEAF_BIT = 0x100
_MAX_DIRECT_OFFSET = 1 << 21


def _encode_values(mapping):
    """Encodes each normalized string into the op's 31-bit value, sharing pool entries."""
    pool = bytearray()
    pool_offsets = {}
    values = {}
    for code_point, normalized in mapping.items():
        encoded = normalized.encode("utf-8")
        if len(encoded) > _MAX_NORMALIZED_BYTES:
            raise ValueError(
                f"The normalized text of U+{code_point:04X} is {len(encoded)} bytes long; "
                f"at most {_MAX_NORMALIZED_BYTES} are supported."
            )
        value = _DIFFERENT_BIT
        if encoded:
            offset = pool_offsets.get(encoded)
            if offset is None:
                offset = len(pool)
                if offset > _MAX_POOL_OFFSET:
                    raise ValueError("The normalized string pool is too large.")
                pool_offsets[encoded] = offset
                pool += encoded
            value |= (offset << _LENGTH_BITS) | len(encoded)
        values[code_point] = value
    return values, bytes(pool)


class _NodeTable:
    """Interns trie nodes so that identical subtrees are stored once.

    A node is `(value, children)`: `value` is the leaf value (or None) and `children` a tuple of
    `(byte, node_id)` sorted by byte.
    """

    def __init__(self):
        self.ids = {}
        self.nodes = []

    def intern(self, value, children):
        key = (value, children)
        node_id = self.ids.get(key)
        if node_id is None:
            node_id = len(self.nodes)
            self.ids[key] = node_id
            self.nodes.append(key)
        return node_id


def _build_node_tree(values):
    """Builds the interned trie of UTF-8 keys; returns (table, root_id)."""
    table = _NodeTable()
    leaf_ids = {}

    def leaf(value):
        if value not in leaf_ids:
            leaf_ids[value] = table.intern(value, ())
        return leaf_ids[value]

    # Group keys level by level: `children[prefix]` lists (byte, node) of the node reached by
    # the code point prefix `prefix` (the code point shifted right by 6 bits per missing byte).
    def group(items):
        grouped = {}
        for prefix, byte, node in items:
            grouped.setdefault(prefix, []).append((byte, node))
        return {prefix: table.intern(None, tuple(sorted(c))) for prefix, c in grouped.items()}

    root_children = []
    by_length = {1: [], 2: [], 3: [], 4: []}
    for code_point, value in values.items():
        if code_point == 0:
            continue
        length = 1 if code_point < 0x80 else 2 if code_point < 0x800 else (
            3 if code_point < 0x10000 else 4)
        by_length[length].append((code_point, value))

    for code_point, value in by_length[1]:
        root_children.append((code_point, leaf(value)))
    lead_markers = {2: 0xC0, 3: 0xE0, 4: 0xF0}
    for length in (2, 3, 4):
        if not by_length[length]:
            continue
        # The last continuation byte: leaves grouped under their (length - 1)-byte prefix.
        level = group(
            (code_point >> 6, 0x80 | (code_point & 0x3F), leaf(value))
            for code_point, value in by_length[length]
        )
        for _ in range(length - 2):
            level = group(
                (prefix >> 6, 0x80 | (prefix & 0x3F), node) for prefix, node in level.items()
            )
        for prefix, node in level.items():
            root_children.append((lead_markers[length] | prefix, node))
    root = table.intern(None, tuple(sorted(root_children)))
    return table, root


class _Allocator:
    """First-fit placement of children blocks in the double array."""

    def __init__(self):
        self.used = np.zeros(1 << 16, dtype=bool)
        self.used[0] = True  # The root unit.
        self.used_bases = {0}
        self.search_start = 1

    def _grow(self, size):
        if size > len(self.used):
            grown = np.zeros(max(size, 2 * len(self.used)), dtype=bool)
            grown[: len(self.used)] = self.used
            self.used = grown

    def place(self, labels):
        """Returns a base such that `base ^ label` is free for every label, and marks them."""
        labels = np.asarray(labels, dtype=np.int64)
        window = 4096
        start = self.search_start
        while True:
            bases = np.arange(start, start + window, dtype=np.int64)
            slots = bases[:, None] ^ labels[None, :]
            self._grow(int(slots.max()) + 1)
            fits = ~self.used[slots].any(axis=1)
            for base in bases[fits]:
                base = int(base)
                if base not in self.used_bases:
                    self.used_bases.add(base)
                    self.used[base ^ labels] = True
                    self._advance()
                    return base
            start += window

    def place_single(self):
        """Returns one free slot (for a value unit) and marks it."""
        slot = self.search_start
        while True:
            self._grow(slot + 1)
            if not self.used[slot]:
                self.used[slot] = True
                self._advance()
                return slot
            slot += 1

    def _advance(self):
        while self.search_start < len(self.used) and self.used[self.search_start]:
            self.search_start += 1


def _double_array(table, root):
    """Lays the interned trie out as darts-clone units."""
    allocator = _Allocator()
    internal = [i for i, (_, children) in enumerate(table.nodes) if children]
    bases = {root: 0}
    for slot_label, _ in table.nodes[root][1]:
        allocator.used[slot_label] = True
    # Big blocks first: they are the hardest to fit.
    for node_id in sorted(internal, key=lambda i: -len(table.nodes[i][1])):
        if node_id != root:
            bases[node_id] = allocator.place([byte for byte, _ in table.nodes[node_id][1]])
    value_slots = {}
    for node_id, (value, children) in enumerate(table.nodes):
        if not children:
            value_slots[node_id] = allocator.place_single()
    size = int(np.flatnonzero(allocator.used).max()) + 1
    if size >= _MAX_DIRECT_OFFSET:
        raise ValueError(f"The normalizer trie is too large ({size} units).")
    units = np.zeros(size, dtype=np.uint32)
    for node_id, (value, children) in enumerate(table.nodes):
        if not children:
            units[value_slots[node_id]] = _LEAF_BIT | value
            continue
        base = bases[node_id]
        for byte, child in children:
            position = base ^ byte
            if table.nodes[child][1]:
                units[position] = ((position ^ bases[child]) << 10) | byte
            else:
                units[position] = ((position ^ value_slots[child]) << 10) | _HAS_LEAF_BIT | byte
    return units


def build_normalizer_model(mapping, lower_case_nfd_strip_accents):
    """Serializes a `FastBertNormalizerModel` flatbuffer.

    Args:
        mapping: dict from int code point to str. The normalized text of each changed code point
            (an empty string drops the character). Code points not in `mapping` are kept.
        lower_case_nfd_strip_accents: bool. Stored in the model for information only; the op
            reads the mapping.

    Returns:
        bytes, for `tensorflow_text.FastBertNormalizer(model_buffer=...)`.
    """
    values, pool = _encode_values(mapping)
    table, root = _build_node_tree(values)
    units = _double_array(table, root)

    builder = flatbuffers.Builder(units.nbytes + len(pool) + 1024)
    pool_vector = builder.CreateNumpyVector(np.frombuffer(pool or b"\0", dtype=np.uint8))
    trie_vector = builder.CreateNumpyVector(units)
    builder.StartObject(4)
    builder.PrependBoolSlot(0, bool(lower_case_nfd_strip_accents), False)
    builder.PrependUOffsetTRelativeSlot(1, trie_vector, 0)
    builder.PrependInt32Slot(2, values.get(0, 0), 0)
    builder.PrependUOffsetTRelativeSlot(3, pool_vector, 0)
    builder.Finish(builder.EndObject())
    return bytes(builder.Output())
