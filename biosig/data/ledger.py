"""The split ledger: which groups (subjects, recordings) a checkpoint trained and validated on,
so that scoring it later on windows of those same groups -- the field's most repeated
evaluation mistake -- is seen, not silent.

A checkpoint's "ledger" is {"train": part, "val": part or None}; a part is
  {"windows": N, "groups": G, "ids": [str, ...], "counts": [int, ...]}           (G <= MAX_IDS)
  {"windows": N, "groups": G, "hashes": int64 tensor (G,), "counts": tensor (G,)}  (more groups)
Ids are compared as text (str(id)), so 7 in groups.npy and "7" in a parquet column are one group.
The hashes (64-bit blake2b of that text) answer "was this group seen?" with no ids kept.
"""
import hashlib

import numpy as np
import torch

MAX_IDS = 1000      # above this many groups, a part keeps hashes instead of the ids themselves


def _text(ids):
    return [str(g) for g in np.asarray(ids).tolist()]


def _hash(text):
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


def part(groups):
    """The ledger part of one side of a split: groups (n,) the group id of each of its windows."""
    if groups is None:
        return None
    ids, counts = np.unique(np.asarray(_text(groups)), return_counts=True)
    entry = {"windows": int(len(groups)), "groups": int(len(ids))}
    if len(ids) <= MAX_IDS:
        return {**entry, "ids": ids.tolist(), "counts": counts.tolist()}
    return {**entry, "hashes": torch.tensor([_hash(t) for t in ids.tolist()], dtype=torch.int64),
            "counts": torch.as_tensor(counts, dtype=torch.int64)}


def make(groups, train_idx, val_idx=None):
    """The checkpoint's ledger from the run's groups (N,) and its split; None without groups."""
    if groups is None:
        return None
    return {"train": part(groups[train_idx]), "val": part(groups[val_idx]) if val_idx is not None else None}


def seen_in(entry, groups):
    """(n,) bool: which of `groups` (ids per scored window) the ledger part `entry` holds."""
    text = _text(groups)
    if entry is None:
        return np.zeros(len(text), bool)
    if "ids" in entry:
        known = set(entry["ids"])
        return np.array([t in known for t in text], bool)
    known = set(entry["hashes"].tolist())
    return np.array([_hash(t) in known for t in text], bool)


def check(ledger, groups):
    """Scored windows' groups against a checkpoint's ledger -> a dict for reports:
    windows, train_windows / val_windows (scored windows whose group it trained / validated on),
    their groups' counts, leaky (any of them), and `seen` (n,) per window: "train", "val" or ""."""
    in_train = seen_in(ledger.get("train"), groups)
    in_val = seen_in(ledger.get("val"), groups) & ~in_train
    seen = np.where(in_train, "train", np.where(in_val, "val", ""))
    ids = np.asarray(_text(groups))
    return {"windows": int(len(ids)), "groups": int(len(np.unique(ids))),
            "train_windows": int(in_train.sum()), "train_groups": int(len(np.unique(ids[in_train]))),
            "val_windows": int(in_val.sum()), "val_groups": int(len(np.unique(ids[in_val]))),
            "leaky": bool(in_train.any() or in_val.any()), "seen": seen}


def describe(result, ckpt):
    """One line on what check() found."""
    if not result["leaky"]:
        return (f"groups: none of the {result['groups']} group(s) of the {result['windows']} scored windows were "
                f"seen in training or validation of {ckpt}")
    parts = []
    if result["train_windows"]:
        parts.append(f"{result['train_windows']} from {result['train_groups']} group(s) it trained on")
    if result["val_windows"]:
        parts.append(f"{result['val_windows']} from {result['val_groups']} group(s) it validated on")
    return (f"groups: LEAKY: of the {result['windows']} scored windows, {' and '.join(parts)} ({ckpt}); "
            f"scores on them are optimistic")
