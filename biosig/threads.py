"""How many CPU threads a command's math uses: chosen from the CPUs this process may really use.

torch's default is one thread per physical core in the affinity mask, blind to a container's CPU
quota (`docker --cpus 2` on a 64-core host), to SLURM_CPUS_PER_TASK in an unpinned job and to
torchrun ranks sharing the cores: more threads than CPUs, and OpenMP threads that spin-wait for a
descheduled sibling turn a step of milliseconds into one of a scheduler slice. So:

    --threads N                   wins over everything
    OMP_NUM_THREADS               (set by the user, a launcher, sweep.py) wins over the guess
    the guess                     min(physical cores in the affinity mask, cgroup CPU quota,
                                  SLURM_CPUS_PER_TASK), divided among torchrun's local ranks

and quiet_waiting() makes waiting threads spin briefly, then sleep, for when every CPU is ours but busy.
No torch import here (biosig.windows and biosig.bandpower stay numpy-only): torch is imported
by apply() only.
"""
import os
import sys

from .errors import UserError, positive_int, warn

def add_threads_flag(parser):
    """The one --threads flag every command takes (train.py, infer.py, the module tools)."""
    return parser.add_argument("--threads", type=positive_int, metavar="N",
                               help="CPU threads for the math (default: the CPUs this process may use: its affinity "
                               "mask, cgroup CPU quota and SLURM_CPUS_PER_TASK, split among torchrun's local "
                               "processes; OMP_NUM_THREADS when set)")


def affinity_cores(cpus, sysfs="/sys/devices/system/cpu"):
    """The physical cores among the logical CPUs `cpus` (hyperthreads of one core count once,
    as in torch's default); len(cpus) where the topology cannot be read."""
    cores = set()
    for cpu in cpus:
        try:
            with open(os.path.join(sysfs, f"cpu{cpu}", "topology", "core_id")) as f:
                core = f.read().strip()
            with open(os.path.join(sysfs, f"cpu{cpu}", "topology", "physical_package_id")) as f:
                package = f.read().strip()
        except OSError:
            return len(cpus)
        cores.add((package, core))
    return len(cores) or len(cpus)


def cgroup_quota(cgroup_root="/sys/fs/cgroup", proc_cgroup="/proc/self/cgroup"):
    """The CPU quota of this process's cgroup (or a parent's) in whole CPUs, rounded down, at
    least 1; None when there is none. v2: cpu.max "QUOTA PERIOD"; v1: cpu.cfs_quota_us and
    cpu.cfs_period_us under cpu/ (or cpu,cpuacct/)."""
    paths = [""]                                # a container sees its own cgroup as the root
    try:
        with open(proc_cgroup) as f:
            for line in f:                      # "0::/user.slice/x" (v2), "4:cpu,cpuacct:/x" (v1)
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if controllers == "" or "cpu" in controllers.split(","):
                    parts = path.strip("/").split("/")           # the cgroup and its parents: each may limit
                    paths += ["/".join(parts[:i]) for i in range(1, len(parts) + 1) if parts[0]]
    except (OSError, ValueError):
        pass
    quotas = []
    for path in paths:
        for files in ((os.path.join(cgroup_root, path, "cpu.max"),),
                      *((os.path.join(cgroup_root, v1, path, "cpu.cfs_quota_us"),
                         os.path.join(cgroup_root, v1, path, "cpu.cfs_period_us")) for v1 in ("cpu", "cpu,cpuacct"))):
            try:
                words = " ".join(_read(name) for name in files).split()
                quota, period = int(words[0]), int(words[1])        # "max" (v2 without a quota): ValueError
            except (OSError, ValueError, IndexError):
                continue
            if quota > 0 and period > 0:                            # v1 without a quota: -1
                quotas.append(max(1, quota // period))
    return min(quotas) if quotas else None


def _read(name):
    with open(name) as f:
        return f.read()


def usable_cpus(environ=None, cgroup_root="/sys/fs/cgroup", proc_cgroup="/proc/self/cgroup"):
    """(n, why): the CPUs this process may keep busy, and which limit says so."""
    environ = os.environ if environ is None else environ
    if hasattr(os, "sched_getaffinity"):
        cpus = os.sched_getaffinity(0)
        limits = [(affinity_cores(cpus), "CPU affinity" if len(cpus) < (os.cpu_count() or 1) else "CPU count")]
    else:
        limits = [(os.cpu_count() or 1, "CPU count")]
    quota = cgroup_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        limits.append((quota, "cgroup CPU quota"))
    slurm = environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        limits.append((int(slurm), "SLURM_CPUS_PER_TASK"))
    return min(limits, key=lambda limit: limit[0])       # the first of equal limits: the machine's own


def choose_threads(flag=None, environ=None, cgroup_root="/sys/fs/cgroup", proc_cgroup="/proc/self/cgroup"):
    """(n, why): --threads, else OMP_NUM_THREADS, else the usable CPUs (usable_cpus) split among
    torchrun's LOCAL_WORLD_SIZE processes on this machine. why is a short text for the start-up line."""
    environ = os.environ if environ is None else environ
    if flag is not None:
        return int(flag), "--threads"
    omp = environ.get("OMP_NUM_THREADS", "").strip()
    if omp:
        first = omp.split(",")[0].strip()       # OpenMP allows a list per nesting level: the first is ours
        if not first.isdigit() or int(first) < 1:
            raise UserError(f"OMP_NUM_THREADS={omp}: not a positive whole number (unset it, or give --threads N)")
        return int(first), "OMP_NUM_THREADS"
    n, why = usable_cpus(environ, cgroup_root, proc_cgroup)
    local = environ.get("LOCAL_WORLD_SIZE", "")
    if local.isdigit() and int(local) > 1:
        return max(1, n // int(local)), f"{why}: {n} / {local} local processes"
    return n, why


def check_environment(argv, environ=None):
    """Before torch is imported: a nonsense OMP_NUM_THREADS is one line (choose_threads' UserError)
    here, not libgomp's own warning and a blank line first, when torch loads it. With --threads N
    in argv the flag wins (choose_threads), so N replaces it, for libgomp and for any child."""
    environ = os.environ if environ is None else environ
    try:
        choose_threads(environ=environ)
    except UserError:
        flag = None
        for i, arg in enumerate(argv):          # argparse has not run yet: it needs torch (the model registry)
            if arg == "--threads" and i + 1 < len(argv):
                flag = argv[i + 1]
            elif arg.startswith("--threads="):
                flag = arg.split("=", 1)[1]
        if flag is None or not flag.isdigit() or int(flag) < 1:
            raise
        environ["OMP_NUM_THREADS"] = flag


def quiet_waiting(environ=None):
    """Before torch is imported (or in a child's `environ`): GOMP_SPINCOUNT=10000 (libgomp, torch's
    OpenMP on Linux; default 300000), so that an OpenMP thread that finishes first spins ~0.1 ms,
    then sleeps, instead of spinning on until a descheduled sibling gets a core back: 10-40x slower
    steps on a loaded machine otherwise, and within 2% of spinning on a quiet one, where PASSIVE
    (no spinning) lost 30% (docs/troubleshooting.md). Not when the user set a wait policy, nor
    once torch's OpenMP runtime has read its settings (when loaded)."""
    if environ is None:
        if "torch" in sys.modules:
            return
        environ = os.environ
    if "OMP_WAIT_POLICY" not in environ and "GOMP_SPINCOUNT" not in environ:
        environ["GOMP_SPINCOUNT"] = "10000"


def apply(flag=None, import_torch=True):
    """Choose (choose_threads) and set torch's thread count -> the start-up line's text,
    "threads 2 (CPU affinity)". import_torch=False (the numpy-only tools): torch's threads only if
    it is loaded already; else OMP/MKL/OPENBLAS_NUM_THREADS, for what loads later and for children."""
    n, why = choose_threads(flag)
    usable, _ = usable_cpus()
    if why == "--threads" and n > usable:
        warn(f"--threads {n}: more threads than the {usable} CPU(s) this process may use; expect waiting, not speed")
    if not import_torch and "torch" not in sys.modules:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = str(n)
        return f"threads {n} ({why})"
    import torch
    torch.set_num_threads(n)
    try:
        # inter-op threads (torch.jit.fork and the like) too; torch refuses once parallel work has run
        torch.set_num_interop_threads(n)
    except RuntimeError:
        pass
    return f"threads {n} ({why})"
