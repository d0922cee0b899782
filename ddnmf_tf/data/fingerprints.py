"""Order-independent digests of sets of examples, and those of the real splits the package recognises."""

from __future__ import annotations

import hashlib

import numpy as np

from ddnmf_tf.data.examples import CHUNK, row_size
from ddnmf_tf.data.names import UNLABELED

# fingerprint() of real splits as stored (uint8 pixels, int64 labels), keyed by (dataset, split). MNIST's
# training split is not among them: the data layer reads it as named.
_KNOWN_SPLITS = {
    ("mnist", "test"): "10000-d69b96459e590d36",
    ("fashion_mnist", "train"): "60000-708e051b33ade898",
    ("fashion_mnist", "test"): "10000-be9a5e7d28ad2125",
}


def _add_fingerprints(*fingerprints: str) -> str:
    """The fingerprint of the union of disjoint sets of examples, from theirs."""
    counts, sums = zip(*(text.split("-") for text in fingerprints))
    return f"{sum(map(int, counts))}-{sum(int(value, 16) for value in sums) % 2**64:016x}"


KNOWN_FINGERPRINTS = {
    **{fingerprint: key for key, fingerprint in _KNOWN_SPLITS.items()},
    _add_fingerprints(_KNOWN_SPLITS["fashion_mnist", "train"], _KNOWN_SPLITS["fashion_mnist", "test"]):
        ("fashion_mnist", "all"),
}
"""``{fingerprint: (dataset, split)}`` of the real splits the package recognises."""


def fingerprint(values: np.ndarray, labels: np.ndarray | None = None) -> str:
    """An order-independent digest of a set of examples: ``"<count>-<16 hex digits>"``.

    Each example (its values as stored, in their dtype, and its int64 label)
    is hashed with BLAKE2b to 64 bits and the hashes are summed modulo 2**64,
    so shuffling the examples leaves the fingerprint unchanged and the
    fingerprint of a union of disjoint sets is the sum of theirs. Memory-mapped
    values are read in chunks.
    """
    labels = np.full(len(values), UNLABELED, np.int64) if labels is None else np.asarray(labels, np.int64)
    total = 0
    for start in range(0, len(values), CHUNK):
        rows = np.ascontiguousarray(values[start:start + CHUNK]).reshape(-1, row_size(values))
        hashes = np.fromiter(
            (int.from_bytes(hashlib.blake2b(row.tobytes() + label.tobytes(), digest_size=8).digest(), "little")
             for row, label in zip(rows, labels[start:start + CHUNK])),
            np.uint64, len(rows),
        )
        total += int(hashes.sum(dtype=np.uint64))
    return f"{len(values)}-{total % 2**64:016x}"


def identify(digest: str) -> tuple[str, str] | None:
    """``(dataset, split)`` of a known real split with this :func:`fingerprint`, else None."""
    return KNOWN_FINGERPRINTS.get(digest)
