#!/usr/bin/env python3
"""Lists functions in src/ longer than a limit (default 80 lines), tests
excluded. Exit 1 when there is one: the codebase keeps functions short
enough to read in one screen."""
import os, re, sys

LIMIT = int(sys.argv[1]) if len(sys.argv) > 1 else 80
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")

def strip(line):
    # Braces inside strings and chars do not count.
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//")[0]

found = []
for dirpath, _, files in os.walk(SRC):
    for f in sorted(files):
        if not f.endswith(".rs"):
            continue
        path = os.path.join(dirpath, f)
        lines = open(path).read().split("#[cfg(test)]")[0].splitlines()
        i = 0
        while i < len(lines):
            m = FN.match(lines[i])
            if not m:
                i += 1
                continue
            depth, start, j, opened = 0, i, i, False
            while j < len(lines):
                text = strip(lines[j])
                depth += text.count("{") - text.count("}")
                opened = opened or "{" in text
                if opened and depth <= 0:
                    break
                if not opened and text.rstrip().endswith(";"):
                    break
                j += 1
            length = j - start + 1
            if length > LIMIT:
                found.append((length, os.path.relpath(path, SRC), start + 1, m.group(5)))
            i = start + 1
for length, path, line, name in sorted(found, reverse=True):
    print(f"{length:4} lines  src/{path}:{line}  {name}")
sys.exit(1 if found else 0)
