#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Man pages (man/*.in -> OUT/): the option lists are generated from the
programs' own key tables (their --help), so a key or flag can never be
missing from or stale in a page.

usage: scripts/man.py BINDIR OUTDIR
"""
import os
import re
import subprocess
import sys

LINE = re.compile(r"^  (--[a-z0-9-]+)(?: (\S+))?\s{2,}(.*)$")


def esc(text):
    """Plain text for roff: backslashes, dashes, leading dots."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return text


def options(binary, as_keys):
    """roff .TP entries from BINARY --help: as flags, or as config keys."""
    out = subprocess.run([binary, "--help"], capture_output=True,
                         text=True, check=False).stdout
    entries = []
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        flag, arg, help_ = m.group(1), m.group(2) or "", m.group(3)
        if flag == "--help" or (as_keys and flag in ("--config", "--version")):
            continue
        if as_keys:
            head = "\\fB%s\\fR = \\fI%s\\fR" % (
                esc(flag[2:].replace("-", "_")), esc(arg or "yes|no"))
        else:
            head = "\\fB%s\\fR%s" % (esc(flag), " \\fI%s\\fR" % esc(arg)
                                     if arg else "")
        entries.append(".TP\n%s\n%s" % (head, esc(help_)))
    if len(entries) < 5:
        sys.exit("man.py: %s --help lists %d options" % (binary, len(entries)))
    return "\n".join(entries)


# The other tools: their --help is the same layout (a usage header, then
# the key table), so a page has the header as SYNOPSIS and DESCRIPTION
# and the table as OPTIONS.
TOOLS = {
    "tiber-simguest": "a simulated guest for tiber's sim backend",
    "tiber-bench": "measure tiber's checkpoint pause against the memory-copy bound",
    "tiber-microbench": "micro-benchmarks of tiber's building blocks",
}


def tool_page(binary, name, what):
    out = subprocess.run([binary, "--help"], capture_output=True,
                         text=True, check=False).stdout
    head = []
    for line in out.splitlines():
        if LINE.match(line):
            break
        head.append(line)
    synopsis = []
    while head and (head[0].startswith("usage:") or
                    (synopsis and head[0][:1].isspace())):
        line = head.pop(0)
        synopsis.append(line[len("usage: "):] if line.startswith("usage:")
                        else line[len("usage: "):] if line[:7].isspace()
                        else line.strip())
    if not synopsis:
        sys.exit("man.py: %s --help has no usage line" % binary)
    head = [l.strip() for l in head if l.strip()]
    if head and head[-1].endswith(":"):
        head.pop()  # "Flags ...:", the list's own heading
    head.append("Every option can also be a KEY = VALUE line of a --config "
                "file (the key is the flag without its dashes, - as _). "
                "A bad value is an error naming the key (exit status 2).")
    description = " ".join(head)
    return (".TH %s 1 \"2026\" \"tiber\" \"User Commands\"\n"
            ".SH NAME\n%s \\- %s\n"
            ".SH SYNOPSIS\n.nf\n%s\n.fi\n"
            ".SH DESCRIPTION\n%s\n"
            ".SH OPTIONS\n%s\n"
            ".SH SEE ALSO\n.BR tiberd (8),\n.BR tiber-replicator (8)\n"
            % (name.upper(), esc(name), esc(what),
               "\n".join("\\&" + esc(l) for l in synopsis),
               esc(description), options(binary, False)))


def main():
    bindir, outdir = sys.argv[1], sys.argv[2]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.makedirs(outdir, exist_ok=True)
    tiberd = os.path.join(bindir, "tiberd")
    repl = os.path.join(bindir, "tiber-replicator")
    subst = {
        "tiberd.8": {"@OPTIONS@": options(tiberd, False)},
        "tiber-replicator.8": {"@OPTIONS@": options(repl, False)},
        "tiberctl.8": {},
        "tiber.conf.5": {"@OPTIONS_TIBERD@": options(tiberd, True),
                         "@OPTIONS_REPLICATOR@": options(repl, True)},
    }
    for page, marks in subst.items():
        text = open(os.path.join(root, "man", page + ".in")).read()
        for mark, value in marks.items():
            text = text.replace(mark, value)
        assert not re.search(r"@[A-Z_]+@", text), page
        open(os.path.join(outdir, page), "w").write(text)
    for name, what in TOOLS.items():
        binary = os.path.join(bindir, name)
        if os.path.exists(binary):
            open(os.path.join(outdir, name + ".1"), "w").write(
                tool_page(binary, name, what))


main()
