"""The README and docs/ stay true: their links lead somewhere, the README stays short and maps every
page, the docs' train.py / infer.py / sweep.py lines still parse, and the README's commands on the
shipped sample data still run (slow: in a fresh copy of the repository)."""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
DOCS = sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
PAGES = [README, os.path.join(ROOT, "CONTRIBUTING.md"), *DOCS]

FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def rel(path):
    return os.path.relpath(path, ROOT)


def prose_and_blocks(path):
    """(prose lines outside code blocks, [(language, [lines]) for each fenced code block])."""
    prose, blocks, block = [], [], None
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            if FENCE.match(line.strip()):
                if block is None:
                    block = (line.strip()[3:].strip(), [])
                else:
                    blocks.append(block)
                    block = None
            elif block is not None:
                block[1].append(line)
            else:
                prose.append(line)
    return prose, blocks


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped, spaces -> -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path):
    seen, out = {}, set()
    for line in prose_and_blocks(path)[0]:
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*$", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def test_relative_links_point_to_files():
    bad = []
    for page in PAGES:
        for line in prose_and_blocks(page)[0]:
            for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):      # http:, https:, mailto:
                    continue
                path, _, fragment = target.partition("#")
                dest = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
                if not os.path.exists(dest):
                    bad.append(f"{rel(page)}: {target} (no such file)")
                elif fragment and dest.endswith(".md") and fragment not in anchors(dest):
                    bad.append(f"{rel(page)}: {target} (no heading #{fragment} in {rel(dest)})")
    assert not bad, "\n".join(bad)


def test_readme_is_short_and_maps_every_docs_page():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    assert len(text.splitlines()) <= 200, f"README.md has {len(text.splitlines())} lines (at most 200)"
    missing = [rel(p) for p in DOCS if f"(docs/{os.path.basename(p)})" not in text]
    assert not missing, f"README.md's map of docs/ lacks {missing}"
    assert "(CONTRIBUTING.md)" in text


def test_paths_and_imports_shown_exist():
    """Every biosig/... file the pages name exists, and every `from biosig... import name` they show
    imports (the module paths follow the package's folders)."""
    import importlib
    bad = []
    for page in PAGES:
        with open(page, encoding="utf-8") as f:
            text = f.read()
        for path in sorted(set(re.findall(r"\bbiosig/[\w/]*\w\.py\b", text))):
            if not os.path.isfile(os.path.join(ROOT, path)):
                bad.append(f"{rel(page)}: {path} does not exist")
        for module, names in sorted(set(re.findall(r"\bfrom (biosig[\w.]*) import (\w+(?:, \w+)*)", text))):
            try:
                imported = importlib.import_module(module)
            except ImportError as e:
                bad.append(f"{rel(page)}: from {module} import ...: {e}")
                continue
            bad += [f"{rel(page)}: {module} has no {n}" for n in names.split(", ") if not hasattr(imported, n)]
    assert not bad, "\n".join(bad)


def commands(path):
    """Each shell command of the page's code blocks: continuation lines joined, then split at &&."""
    out = []
    for lang, lines in prose_and_blocks(path)[1]:
        if lang not in ("", "bash", "sh", "shell", "console"):
            continue
        joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
        for line in joined.splitlines():
            for part in line.split("&&"):
                out.append(part.strip().removeprefix("$ "))
    return out


SCRIPT = re.compile(r"^(?:\w+=\S+\s+)*(?:python3?\s+(train|infer|sweep)\.py|torchrun\s.*?\b(train)\.py)(\s|$)")


def script_lines():
    """(page, line, script, argv) for every documented train.py / infer.py / sweep.py call without a
    placeholder ("...", "<run>", "[options]") or --help."""
    out = []
    for page in PAGES:
        for line in commands(page):
            m = SCRIPT.match(line)
            if not m or "..." in line or "…" in line or "<" in line or re.search(r"\[\w+\]", line) \
                    or re.search(r"\s(-h|--help)\b", line):
                continue
            words = shlex.split(line[m.end():], comments=True)
            for i, w in enumerate(words):                   # the command ends at a pipe or redirection
                if w in ("|", ";", "&") or w.startswith((">", "2>")):
                    words = words[:i]
                    break
            out.append((rel(page), line, m.group(1) or m.group(2), words))
    return out


def test_docs_script_lines_parse():
    """Every train.py / infer.py / sweep.py line the docs show is accepted by the command's own
    parser (parsed only: nothing runs, no file need exist); a sweep's flags after -- by train.py's."""
    from biosig.cli.infer import get_args_parser as infer_parser
    from biosig.cli.sweep import get_args_parser as sweep_parser
    from biosig.training.options import train_parser
    lines = script_lines()
    assert {s for _, _, s, _ in lines} == {"train", "infer", "sweep"}, "the docs show all three commands"
    bad = []
    for page, line, script, argv in lines:
        todo = [(train_parser(), argv)] if script == "train" else [(infer_parser(), argv)] if script == "infer" else \
            [(sweep_parser(), argv[:argv.index("--")] if "--" in argv else argv),
             (train_parser(), argv[argv.index("--") + 1:] if "--" in argv else [])]
        for parser, args in todo:
            try:
                parser.parse_args(args)
            except SystemExit as e:
                bad.append(f"{page}: {line}  (exit {e.code})")
    assert not bad, "\n".join(bad)


def readme_runnable_blocks():
    """The README's shell blocks (and Python blocks, as `python -c`) that run as they are on the
    repository's own sample data (data/basicmotions), not the test suite's: each as a list of
    commands (&&-joined parts)."""
    out = []
    for lang, lines in prose_and_blocks(README)[1]:
        text = "\n".join(lines)
        if lang == "bash" and "data/basicmotions/" in text and "pytest" not in text \
                and "..." not in text and "<" not in text:
            out.append(commands_of(text))
        elif lang == "python" and "data/basicmotions/" in text:
            out.append([f"python -c {shlex.quote(text)}"])
    return out


def commands_of(text):
    joined = re.sub(r"\\\n\s*", " ", text)
    return [part.strip() for line in joined.splitlines() for part in line.split("&&") if part.strip()]


SETUP = ("python3 -m venv", ". .venv/bin/activate", "source .venv/bin/activate", "pip install")


def copy_repository(dest):
    """The repository's files as git sees them (tracked, and new files not ignored), else everything
    but the venv and run outputs."""
    try:
        names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                               capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "sweeps", "__pycache__"))
        return
    for name in filter(None, names):
        src = os.path.join(ROOT, name)
        if os.path.isfile(src):
            os.makedirs(os.path.join(dest, os.path.dirname(name)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, name))


@pytest.mark.slow
def test_readme_commands_run_on_the_sample_data(tmp_path):
    """The README's "Try it" block (and every other self-contained block on the sample data) exits 0
    in a fresh copy of the repository, with this venv's python instead of a new venv and install."""
    blocks = readme_runnable_blocks()
    assert blocks and any("train.py" in c and "infer.py" in " ".join(b) for b in blocks for c in b), \
        "README's Try it block not found"
    repo = tmp_path / "repo"
    copy_repository(repo)
    python = shlex.quote(sys.executable)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    for block in blocks:
        kept = [re.sub(r"^python(3)?(?=\s)", python, c) for c in block if not c.startswith(SETUP)]
        script = "set -e\n" + "\n".join(kept)
        proc = subprocess.run(["bash", "-c", script], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=1200)
        assert proc.returncode == 0, f"{script}\n--- exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
