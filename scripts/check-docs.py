#!/usr/bin/env python3
"""The documentation stays true to the tree: a reader of a clone can follow every reference in it.

Checks README.md and every Markdown file under docs/:
- every relative link and image (`[text](path)`, `![alt](path)`, `<img src>`, `<a href>`) names a file or directory
  the repository tracks, and its `#anchor` a heading of that file (GitHub's slugs) or an explicit `id`/`name`;
- no link leaves the repository (`../shared/...` above the root, an absolute path such as `/work/...`);
- every path in a code span that starts at one of the repository's top-level directories (`shared/src/hours/`,
  `docs/cxone-admin/samples/`, `scripts/test.sh`) exists, so a moved or deleted file cannot stay cited; a span
  holding a placeholder (`runs/<runId>/`, `…`, `*`) is a pattern, not a path, and is skipped.
And every tracked text file (sources, scripts, docs): no path into the machine it was written on (`/work/`).

Usage: python3 scripts/check-docs.py [--selftest]   (run by scripts/check-infra.sh; exits 1 naming each problem)
"""
import os
import re
import subprocess
import sys
import tempfile
import unicodedata

FENCE = re.compile(r"^\s*(```|~~~)")
# [text](target) and ![alt](target); the target may hold balanced parentheses and an optional "title".
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^()\s>]*(?:\([^()\s]*\)[^()\s>]*)*)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_REF = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.I)
HTML_ID = re.compile(r"<[a-z][^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.I)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, …
PLACEHOLDER = re.compile(r"[<>*…{}$|\[\]]|\.\.\.|NNNNN|XXX")
MACHINE_PATH = "/work/"


def tracked(root):
    """The repository's tracked files (and, so a file being added counts, the untracked ones git does not ignore)."""
    try:
        out = subprocess.run(
            ["git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            check=True, capture_output=True,
        ).stdout.decode()
        files = {f for f in out.split("\0") if f and os.path.exists(os.path.join(root, f))}
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an exported tree): every file but builds
        files = set()
        for d, subdirs, names in os.walk(root):
            subdirs[:] = [s for s in subdirs if s not in (".git", "target", "node_modules")]
            files.update(os.path.relpath(os.path.join(d, n), root) for n in names)
    dirs = set()
    for f in files:
        parts = f.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return files, dirs


def slug(text):
    """GitHub's heading anchor (github-slugger): the rendered text, lower-cased, punctuation dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images keep their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = CODE_SPAN.sub(lambda m: m.group(2), text)
    text = re.sub(r"(\*\*|__|\*)(.+?)\1", r"\2", text)  # emphasis (a lone `_` inside a word stays)
    out = []
    for ch in text.lower():
        cat = unicodedata.category(ch)
        if ch in "-_ " or cat[0] in "LNM":
            out.append("-" if ch == " " else ch)
    return "".join(out)


def strip_code(line):
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def parse(path):
    """(anchors, links, code spans) of a Markdown file: links and spans with their line numbers."""
    anchors, seen, links, spans = set(), {}, [], []
    in_fence = False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if FENCE.match(line):
                in_fence = not in_fence
                continue
            if in_fence:
                continue
            m = HEADING.match(line)
            if m:
                base = slug(m.group(2))
                count = seen.get(base, 0)
                seen[base] = count + 1
                anchors.add(base if count == 0 else f"{base}-{count}")
            anchors.update(HTML_ID.findall(line))
            plain = strip_code(line)
            links += [(n, t) for t in LINK.findall(plain)]
            links += [(n, t) for t in HTML_REF.findall(plain)]
            spans += [(n, m.group(2).strip()) for m in CODE_SPAN.finditer(line)]
    return anchors, links, spans


def check(root):
    files, dirs = tracked(root)
    top = {p.split("/")[0] for p in files if "/" in p}
    docs = sorted(
        f for f in files if f == "README.md" or (f.startswith("docs/") and f.endswith(".md"))
    )
    parsed = {d: parse(os.path.join(root, d)) for d in docs}
    problems = []

    def anchors_of(target):
        if target not in parsed and target.endswith(".md") and target in files:
            parsed[target] = parse(os.path.join(root, target))
        return parsed[target][0] if target in parsed else None

    for doc in docs:
        anchors, links, spans = parsed[doc]
        here = os.path.dirname(doc)
        for n, target in links:
            where = f"{doc}:{n}: {target}"
            if not target or EXTERNAL.match(target):
                continue
            path, _, anchor = target.partition("#")
            if path.startswith("/"):
                problems.append(f"{where}: an absolute path (a reader's clone has no such file; link relative to {doc})")
                continue
            if path:
                resolved = os.path.normpath(os.path.join(here, path))
                if resolved == ".." or resolved.startswith("../"):
                    problems.append(f"{where}: points outside the repository")
                    continue
                resolved = "" if resolved == "." else resolved
                if resolved not in files and resolved not in dirs and resolved != "":
                    problems.append(f"{where}: no such file in the repository ({resolved})")
                    continue
            else:
                resolved = doc
            if anchor:
                known = anchors_of(resolved)
                if known is None:
                    problems.append(f"{where}: an anchor into {resolved or 'a directory'}, which has no headings")
                elif anchor.lower() not in known:
                    problems.append(f"{where}: no heading '#{anchor}' in {resolved}")
        for n, span in spans:
            candidate = re.split(r"::|\s", span)[0].rstrip(":,.;)")
            first = candidate.split("/")[0]
            if "/" not in candidate or first not in top or PLACEHOLDER.search(candidate):
                continue
            if candidate.rstrip("/") not in files and candidate.rstrip("/") not in dirs:
                problems.append(f"{doc}:{n}: `{span}` names a path the repository does not have")

    for f in sorted(files):
        full = os.path.join(root, f)
        try:
            with open(full, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if MACHINE_PATH in line and f != "scripts/check-docs.py":
                        problems.append(f"{f}:{n}: a path on the machine it was written on ({MACHINE_PATH}…)")
        except (UnicodeDecodeError, IsADirectoryError):
            continue
    return problems, len(docs)


def selftest():
    """Each kind of breakage is caught, and a correct tree passes."""
    with tempfile.TemporaryDirectory() as root:
        subprocess.run(["git", "init", "-q", root], check=True)
        os.makedirs(os.path.join(root, "docs/images"))
        os.makedirs(os.path.join(root, "scripts"))
        good = {
            "README.md": "# T\n\nSee [a](docs/a.md#the-rules-of-law), ![i](docs/images/x.png), [s](scripts/),"
            " `scripts/run.sh`, `runs/<runId>/` and [w](https://example.com/x).\n\n```sh\n[x](nowhere.md)\n```\n",
            "docs/a.md": "# A\n\n## The rules of law\n\n## `dncctl doctor`: first\n\n## Number → zones\n\n"
            "[b](#dncctl-doctor-first) [c](#number--zones) [d](../README.md#t) [e](#the-rules-of-law)\n",
            "docs/images/x.png": "png",
            "scripts/run.sh": "true\n",
        }
        bad = {
            "README.md": "# T\n\n[gone](docs/gone.md) [up](../shared/spec/CONTRACT.md) [abs](/work/shared/x.md)"
            " [anchor](docs/a.md#nothing) `scripts/gone.py`\n",
            "scripts/run.sh": "cat /work/shared/spec/CONTRACT.md\n",
        }
        for name, text in good.items():
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        problems, _ = check(root)
        assert problems == [], problems
        for name, text in bad.items():
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        problems, _ = check(root)
        expected = ["no such file", "outside the repository", "absolute path", "no heading '#nothing'",
                    "`scripts/gone.py` names a path", "README.md:3: a path on the machine",
                    "scripts/run.sh:1: a path on the machine"]
        for e in expected:
            assert any(e in p for p in problems), (e, problems)
        assert len(problems) == len(expected), problems
    print("check-docs selftest: ok")


def main():
    if sys.argv[1:] == ["--selftest"]:
        selftest()
        return 0
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems, count = check(root)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check-docs: {len(problems)} problem(s) in the documentation", file=sys.stderr)
        return 1
    print(f"check-docs: {count} Markdown files, every link, anchor and cited path resolves in the repository")
    return 0


if __name__ == "__main__":
    sys.exit(main())
