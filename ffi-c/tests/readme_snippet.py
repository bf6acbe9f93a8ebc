#!/usr/bin/env python3
"""Writes the C block of the top-level README.md's "From C" section to a .c file, as it stands.

    readme_snippet.py README.md OUT.c

`make test-c` compiles it with ffi-c/tests/c/readme_main.c, which supplies `respond` and runs
`answer` against a small table. A `#line` directive makes compiler messages point into
README.md. Fails if the section or its ```c block is missing.
"""

import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    readme, out = sys.argv[1], sys.argv[2]
    lines = open(readme, encoding="utf-8").read().split("\n")
    try:
        section = lines.index("## From C (`ffi-c/`)")
    except ValueError:
        sys.exit(f"{readme}: no section \"## From C (`ffi-c/`)\"")
    start = None
    for number in range(section + 1, len(lines)):
        if lines[number].startswith("## "):
            break
        if lines[number] == "```c":
            start = number + 1
            break
    if start is None:
        sys.exit(f"{readme}: no ```c block in the \"From C\" section")
    try:
        end = lines.index("```", start)
    except ValueError:
        sys.exit(f"{readme}: the ```c block at line {start} is not closed")
    with open(out, "w", encoding="utf-8") as file:
        # Line numbers count from 1; the block's first line is lines[start].
        file.write(f'#line {start + 1} "{readme}"\n')
        file.write("\n".join(lines[start:end]) + "\n")


if __name__ == "__main__":
    main()
