"""How much memory this process may still use (for --load auto and --load ram)."""


def available_memory():
    """Bytes this process may still use: the tightest of MemAvailable, the cgroup limit (a
    container's, a SLURM job's) and the data/address-space rlimits (ulimit -d / -v)."""
    limits = []
    try:
        import resource
        status = {}
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmData", "VmSize"):
                    status[key] = int(value.split()[0]) * 1024
        for which, used in ((resource.RLIMIT_DATA, "VmData"), (resource.RLIMIT_AS, "VmSize")):
            soft = resource.getrlimit(which)[0]
            if soft != resource.RLIM_INFINITY and used in status:
                limits.append(max(soft - status[used], 0))
    except (ImportError, OSError, ValueError):
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:  # cgroup v2 or v1: the limit of the group this process runs in (container, SLURM job)
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, rel = line.strip().split(":", 2)
                if controllers == "":
                    candidates = [(f"/sys/fs/cgroup{rel}/memory.max", f"/sys/fs/cgroup{rel}/memory.current")]
                elif "memory" in controllers.split(","):
                    base = f"/sys/fs/cgroup/memory{rel}"
                    candidates = [(f"{base}/memory.limit_in_bytes", f"{base}/memory.usage_in_bytes")]
                else:
                    continue
                for limit_file, usage_file in candidates:
                    try:
                        limit = open(limit_file).read().strip()
                        usage = int(open(usage_file).read().strip())
                    except OSError:
                        continue
                    if limit.isdigit() and int(limit) < 1 << 60:
                        limits.append(max(int(limit) - usage, 0))
    except (OSError, ValueError):
        pass
    return min(limits) if limits else 1 << 62
