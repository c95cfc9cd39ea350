"""Serving windows as batches: one sorted read per batch, shuffled and sharded per epoch."""
import numpy as np
import torch

from .. import named


class Windows:
    """Rows of X (maybe memory-mapped) and their labels, served as batches. X may be several
    inputs and y several targets, {name: array} each (biosig.named): a batch is then such dicts.

    A batch is one sorted fancy-index read `X[idx]`, far cheaper than N per-sample reads
    through a Dataset and collate. With workers > 0, batches are read in worker processes
    that open the memmap themselves (a memmap must not be pickled: it would copy the file).
    """

    def __init__(self, X, y, indices):
        self.X, self.y, self.indices = X, y, np.asarray(indices)
        self.path = named.each(lambda a: a.filename if isinstance(a, np.memmap) else None, X)

    def __len__(self):
        return len(self.indices)

    def read(self, positions):
        """Windows at `positions` (into self.indices) -> (x (B, C, F, T) float32, y (B,))."""
        rows = np.sort(self.indices[positions])
        x = named.each(lambda a: torch.from_numpy(np.ascontiguousarray(a[rows], dtype=np.float32)), self.X)
        y = named.each(lambda a: torch.from_numpy(np.asarray(a[rows])), self.y) if self.y is not None \
            else torch.zeros(len(rows), dtype=torch.int64)
        return x, y

    def __getstate__(self):  # sent to DataLoader workers: reopen the memmaps there
        state = dict(self.__dict__)
        state["X"] = named.each(lambda a: None if isinstance(a, np.memmap) else a, self.X)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.X = _reopen(self.X, self.path)


def _reopen(X, path):
    """The arrays a worker was sent, memmaps (None) opened again from their paths."""
    if isinstance(X, dict):
        return {k: _reopen(v, path[k]) for k, v in X.items()}
    return np.load(path, mmap_mode="r", allow_pickle=False) if X is None else X


class DeviceWindows:
    """Windows copied once into a device's memory; a batch is then an index there, with no host
    read, pinning or copy per step. Serves exactly the batches Windows does (the same sorted
    rows), so a run is the same with either."""

    def __init__(self, windows, device, chunk_bytes=64 << 20):
        self.rows = np.unique(windows.indices)            # sorted: row -> its place here
        self.indices = windows.indices
        self.X = named.each(lambda a: self._copy(a, device, chunk_bytes), windows.X)
        y = named.each(lambda a: torch.from_numpy(np.asarray(a[self.rows])).to(device), windows.y) \
            if windows.y is not None else torch.zeros(len(self.rows), dtype=torch.int64, device=device)
        self.y = y
        self.device = torch.device(device)

    def _copy(self, X, device, chunk_bytes):
        shape = X.shape[1:]
        per = max(1, chunk_bytes // (4 * int(np.prod(shape))))
        out = torch.empty((len(self.rows), *shape), dtype=torch.float32, device=device)
        for s in range(0, len(self.rows), per):          # bounded host memory for a memmapped X
            part = np.ascontiguousarray(X[self.rows[s:s + per]], dtype=np.float32)
            out[s:s + per] = torch.from_numpy(part).to(device)
        return out

    def __len__(self):
        return len(self.indices)

    def read(self, positions):
        """Windows at `positions` (into self.indices) -> (x (B, C, F, T), y (B,)) on the device."""
        places = torch.from_numpy(np.searchsorted(self.rows, np.sort(self.indices[positions])))
        if self.device.type == "cuda":      # from pageable memory, a copy would wait for the GPU to finish
            places = places.pin_memory()
        places = places.to(self.device, non_blocking=True)
        return named.take(self.X, places), named.take(self.y, places)


RESIDENT_SHARE = 0.25       # a data set is copied to the GPU when it takes at most this share of its free memory


def on_device(windows, device, workers=0):
    """`windows` as DeviceWindows when the run is on a CUDA device, reads batches itself
    (workers 0) and the windows fit in RESIDENT_SHARE of the GPU's free memory; else as they are."""
    if windows is None or device.type != "cuda" or workers > 0:
        return windows
    per_window = sum(int(np.prod(a.shape[1:])) for a in
                     (windows.X.values() if isinstance(windows.X, dict) else [windows.X]))
    nbytes = len(windows) * 4 * per_window     # at most: rows may repeat
    if nbytes > RESIDENT_SHARE * torch.cuda.mem_get_info(device)[0]:
        return windows
    return DeviceWindows(windows, device)


class _BatchReads(torch.utils.data.Dataset):
    def __init__(self, windows, batches):
        self.windows, self.batches = windows, batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        return self.windows.read(self.batches[i])


def iterate_batches(windows, batches, workers=0):
    """Yield (x, y) for each list of positions in `batches`, in order."""
    if workers <= 0:
        for b in batches:
            yield windows.read(b)
        return
    # its own generator: a DataLoader otherwise draws its worker seed from the global torch RNG,
    # and dropout would then differ from a run without workers (and from an exact resume)
    loader = torch.utils.data.DataLoader(_BatchReads(windows, batches), batch_size=None, shuffle=False,
                                         num_workers=workers, persistent_workers=False, prefetch_factor=4,
                                         generator=torch.Generator().manual_seed(0))
    yield from loader


def epoch_batches(n, batch, seed, epoch, shuffle, rank=0, world=1):
    """This rank's share of each global batch for one epoch: a list of position arrays.

    The global order is a permutation seeded by (seed, epoch), the same on every rank, cut
    into global batches of `batch`; rank r takes every world-th element of each. So K
    processes see exactly the batches one process would, split between them. A trailing
    global batch smaller than `world` is dropped so every rank takes the same number of steps.
    Returns (local_batches, global_sizes).
    """
    if shuffle:
        g = torch.Generator().manual_seed(seed * 100003 + epoch)
        order = torch.randperm(n, generator=g).numpy()
    else:
        order = np.arange(n)
    local, sizes = [], []
    for start in range(0, n, batch):
        chunk = order[start:start + batch]
        if len(chunk) < world:
            break
        local.append(chunk[rank::world])
        sizes.append(len(chunk))
    return local, sizes


def shard_range(n, rank, world):
    """Contiguous [start, stop) of n items for this rank: every item on exactly one rank."""
    per, extra = divmod(n, world)
    start = rank * per + min(rank, extra)
    return start, start + per + (1 if rank < extra else 0)
