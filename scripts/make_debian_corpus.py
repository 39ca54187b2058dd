#!/usr/bin/env python3
"""Builds a retrieval test corpus from the manual pages installed on this machine.

  python3 scripts/make_debian_corpus.py OUT_DIR [--sections 1,8] [--max-chars 2000]
      [--questions 2000] [--seed 0] [--exclude-packages google-cloud-cli] [--jobs 2]

writes
  OUT_DIR/corpus.jsonl     one document per manual page: {"id": "man:NAME.SECTION",
                           "title": "NAME(SECTION)", "text": the page rendered to plain text
                           WITHOUT its NAME section, cut to --max-chars at a word boundary,
                           "metadata": {"package", "copyright"}}
  OUT_DIR/questions.jsonl  one question per page: {"question": the page's one-line
                           summary from its NAME section ("tar - an archiving utility" ->
                           "an archiving utility"), "answers": [NAME], "document_id"},
                           shuffled with random.Random(seed), the first --questions kept.
  OUT_DIR/SOURCES.txt      page -> Debian package -> that package's copyright file.

Why these questions: the NAME line is a human-written summary of the page ("which tool
does X?"), and it is removed from the document, so the query is never a verbatim copy of
the text it must find. It shares words with the page where the author reused them, as a
user's words would, so it does not hand BM25 an exact-sentence match; nor is it derived
from any model's view of the text, so it does not favour the dense retriever either.
Pages are kept only when the summary has 3 to 20 words, is not generic ("manual page
for ..."), and is unique among the kept pages (a summary shared by two pages has no
single gold document); symbolic links and `.so` aliases are skipped; pages whose body is
under 300 characters after rendering are skipped.

Licence: every page stays under its package's licence (mostly GPL / BSD / MIT-style
free licences; SOURCES.txt names each package's /usr/share/doc/PKG/copyright). The
corpus is generated on the machine at run time and must never be committed.
Pages of packages given in --exclude-packages (default: google-cloud-cli, ~16,000
near-identical generated pages from a non-Debian repository) are left out, as are
pages with no owning package or no copyright file.

Needs `man` and `col` (man-db, bsdextrautils); Python 3 standard library only.
"""
import argparse
import concurrent.futures
import glob
import json
import os
import random
import re
import subprocess
import sys

GENERIC = re.compile(r"manual page|man page|^(a |the )?(program|command|utility|tool)$|"
                     r"^undocumented$|^\S+$", re.I)
HEADING = re.compile(r"^[A-Z][A-Z0-9 /&,()'-]*$")


def owners():
    """Maps every file dpkg installed to its package."""
    owner = {}
    for path in glob.glob("/var/lib/dpkg/info/*.list"):
        package = os.path.basename(path)[: -len(".list")].split(":")[0]
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                owner[line.rstrip("\n")] = package
    return owner


def is_alias(path):
    """A page that is only `.so other/page` (man renders the target: a duplicate)."""
    import gzip
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            head = f.read(400)
    except OSError:
        return True
    lines = [l for l in head.splitlines() if l.strip() and not l.startswith(('.\\"', "'\\\""))]
    return bool(lines) and lines[0].startswith(".so ") and len(lines) <= 2


def render(path):
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8",
               MAN_KEEP_FORMATTING="", GROFF_NO_SGR="1")
    try:
        man = subprocess.run(["man", "-l", path], env=env, capture_output=True, timeout=60)
        if man.returncode != 0 or not man.stdout:
            return None
        col = subprocess.run(["col", "-bx"], input=man.stdout, capture_output=True, timeout=60)
        return col.stdout.decode("utf-8", errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return None


def parse(rendered):
    """(summary line after NAME, body text without header, footer and NAME section)."""
    lines = rendered.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 4:
        return None, None
    lines = lines[1:-1]  # the running header and footer
    sections = []  # [heading, [lines]]
    for line in lines:
        if line and not line[0].isspace() and HEADING.match(line.strip()):
            sections.append([line.strip(), []])
        elif sections:
            sections[-1][1].append(line)
    if not sections or sections[0][0] != "NAME":
        return None, None
    name_text = " ".join(l.strip() for l in sections[0][1] if l.strip())
    parts = re.split(r"\s+[-\u2010\u2013\u2014]+\s+", name_text, maxsplit=1)
    if len(parts) != 2:
        return None, None
    summary = parts[1].strip().rstrip(".").strip()
    body = []
    for heading, content in sections[1:]:
        paragraphs, current = [], []
        for l in content:
            if l.strip():
                current.append(re.sub(r"\s+", " ", l.strip()))
            elif current:
                paragraphs.append(" ".join(current))
                current = []
        if current:
            paragraphs.append(" ".join(current))
        if paragraphs:
            body.append(heading + "\n" + "\n".join(paragraphs))
    return summary, "\n\n".join(body)


def cut(text, max_chars):
    if len(text) <= max_chars:
        return text
    text = text[:max_chars]
    space = text.rfind(" ")
    return text[:space] if space > max_chars // 2 else text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--sections", default="1,8", help="manual sections to read")
    parser.add_argument("--max-chars", type=int, default=2000)
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude-packages", default="google-cloud-cli")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    excluded = {p for p in args.exclude_packages.split(",") if p}
    owner = owners()
    candidates = []
    for section in args.sections.split(","):
        for path in sorted(glob.glob(f"/usr/share/man/man{section}/*")):
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            package = owner.get(path)
            if package is None or package in excluded:
                continue
            copyright_file = f"/usr/share/doc/{package}/copyright"
            if not os.path.exists(copyright_file) or is_alias(path):
                continue
            base = os.path.basename(path)
            if base.endswith(".gz"):
                base = base[:-3]
            name, _, sect = base.rpartition(".")
            candidates.append((path, name, sect, package, copyright_file))
    print(f"{len(candidates)} candidate pages, rendering...", file=sys.stderr)

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rendered = list(pool.map(lambda c: render(c[0]), candidates))

    pages = []
    for (path, name, sect, package, copyright_file), text in zip(candidates, rendered):
        if not text:
            continue
        summary, body = parse(text)
        if not summary or not body or len(body) < 300:
            continue
        words = summary.split()
        if not 3 <= len(words) <= 20 or GENERIC.search(summary):
            continue
        pages.append({"path": path, "name": name, "section": sect, "package": package,
                      "copyright": copyright_file, "summary": summary,
                      "body": cut(body, args.max_chars)})

    def key(summary):
        return " ".join(re.findall(r"\w+", summary.lower()))
    counts = {}
    for p in pages:
        counts[key(p["summary"])] = counts.get(key(p["summary"]), 0) + 1
    seen_ids = set()
    kept = []
    for p in pages:
        doc_id = f"man:{p['name']}.{p['section']}"
        if counts[key(p["summary"])] != 1 or doc_id in seen_ids:
            continue
        seen_ids.add(doc_id)
        p["id"] = doc_id
        kept.append(p)

    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for p in kept:
            f.write(json.dumps({"id": p["id"], "title": f"{p['name']}({p['section']})",
                                "text": p["body"],
                                "metadata": {"package": p["package"],
                                             "copyright": p["copyright"]}},
                               ensure_ascii=False) + "\n")
    questions = [{"question": p["summary"], "answers": [p["name"]], "document_id": p["id"]}
                 for p in kept]
    random.Random(args.seed).shuffle(questions)
    if args.questions > 0:
        questions = questions[: args.questions]
    with open(os.path.join(args.out_dir, "questions.jsonl"), "w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    with open(os.path.join(args.out_dir, "SOURCES.txt"), "w", encoding="utf-8") as f:
        f.write("Generated from this machine's manual pages; each page is under its "
                "package's licence. Do not commit.\n")
        for p in kept:
            f.write(f"{p['id']}\t{p['package']}\t{p['copyright']}\n")
    packages = len({p["package"] for p in kept})
    print(f"{len(kept)} documents from {packages} packages, {len(questions)} questions "
          f"-> {args.out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
