#!/usr/bin/env python3
# Doxygen INPUT_FILTER for xa's public headers: lets Doxygen read the plain `//` comments the
# headers are written with (the project's style), so the headers need no `///` or `/** */`.
#
# Doxygen runs `comment_filter.py <file>` and parses what it prints instead of the file. The
# output has exactly the input's lines (warnings keep their line numbers); only comments change:
#   - the file's opening comment becomes its \file description;
#   - a run of `//` lines directly above a declaration (no blank line between) becomes `///`, the
#     declaration's documentation; a run followed by a blank line stays a plain comment, and so
#     does a run above a line that has a trailing comment of its own (a heading over a group of
#     enumerators or fields, each documented on its line);
#   - a trailing `// text` after a declaration becomes `///< text` (not after `}`, a forward
#     declaration or a NOLINT marker);
#   - `int major = 0, minor = 0;` is rewritten as one declaration per name, each with the
#     line's documentation (Doxygen would give it to the first name only);
#   - comments inside function bodies and initialisers are left alone;
#   - in the documentation, lines indented beyond the text (examples, layouts) are kept as
#     written in a \code block, except indented `-` or `1.` lists, which Markdown renders; and a
#     backslash is a backslash (`\xNN`), never a Doxygen command.
# Files other than .h pass through unchanged.

import re
import sys

LIST_ITEM = re.compile(r"\s*(-|\d+\.)\s")
SCOPE_KEYWORD = re.compile(r"\b(namespace|class|struct|union|enum)\b")
FORWARD_DECLARATION = re.compile(r"\s*(class|struct)\s+\w+;\s*$")
DECLARATOR = r"\w+(?:\s*=\s*[^,;(){}<>]+)?"
MULTI_DECLARATION = re.compile(rf"(\s*)([\w:]+)\s+({DECLARATOR}(?:\s*,\s*{DECLARATOR})+);\s*$")


def opens_literal(line, i):
    """A string or character literal starts at line[i] (not a digit separator: 60'000)."""
    return line[i] == '"' or (line[i] == "'" and not (i > 0 and line[i - 1].isalnum()))


def split_comment(line):
    """(code, text after `//`) of one line, or (line, None); `//` in literals does not count."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif opens_literal(line, i):
            quote = c
        elif line.startswith("//", i):
            return line[:i], line[i + 2:]
        i += 1
    return line, None


def is_documentation(comment):
    return comment is not None and not comment.strip().startswith("NOLINT")


def escape(text):
    return text.replace("\\", "\\\\")


class BraceTracker:
    """Tells whether a line may start a declaration: not inside a function body or an
    initialiser, and not in the parentheses of a statement begun on an earlier line."""

    def __init__(self):
        self.stack = []  # True for a scope (namespace, class, enum), False for a body
        self.statement = ""

    def at_declaration(self):
        return all(self.stack) and self.statement.count("(") == self.statement.count(")")

    def feed(self, code):
        if code.lstrip().startswith("#"):
            return
        quote = None
        for i, c in enumerate(code):
            if quote:
                quote = None if c == quote else quote
            elif opens_literal(code, i):
                quote = c
            elif c == "{":
                self.stack.append(bool(SCOPE_KEYWORD.search(self.statement))
                                  and "(" not in self.statement)
                self.statement = ""
            elif c == "}":
                if self.stack:
                    self.stack.pop()
                self.statement = ""
            elif c == ";":
                self.statement = ""
            else:
                self.statement += c
        self.statement += " "


def convert_block(texts):
    """`///` lines for the texts of one comment run (what followed each `//`)."""
    out = [t[1:] if t.startswith(" ") else t for t in texts]
    verbatim = []  # per line: part of an indented block to keep as written
    in_list = False
    for t in out:
        indented = t.startswith("  ")
        in_list = bool(LIST_ITEM.match(t)) or (in_list and indented)
        verbatim.append(indented and not in_list)
    out = [t if v else escape(t) for t, v in zip(out, verbatim)]
    i = 0
    while i < len(out):
        if not verbatim[i]:
            i += 1
            continue
        j = i
        while j < len(out) and verbatim[j]:
            j += 1
        if i > 0:
            out[i - 1] += " \\code"
        else:
            out[i] = "\\code " + out[i]
        if j < len(out):
            out[j] = "\\endcode " + out[j]
        else:
            out[j - 1] += " \\endcode"
        i = j
    return ["/// " + t if t else "///" for t in out]


def filter_header(lines):
    out = []
    tracker = BraceTracker()
    seen_code = False
    pending = None  # the documentation of the run just above a multi-name declaration
    i = 0
    while i < len(lines):
        code, comment = split_comment(lines[i])
        if comment is not None and not code.strip():
            # A run of comment-only lines.
            j = i
            while j < len(lines):
                c, t = split_comment(lines[j])
                if t is None or c.strip():
                    break
                j += 1
            run = lines[i:j]
            texts = [split_comment(line)[1] for line in run]
            next_code, next_comment = split_comment(lines[j] if j < len(lines) else "")
            if not seen_code:
                # The file's opening comment.
                block = convert_block(texts)
                block[-1] += " \\file"
                out.extend(block)
            elif (next_code.strip() and not is_documentation(next_comment)
                  and tracker.at_declaration() and not FORWARD_DECLARATION.match(next_code)):
                if MULTI_DECLARATION.match(next_code):
                    pending = " ".join(t.strip() for t in texts)
                    out.extend(run)
                else:
                    out.extend(code + line for line in convert_block(texts))
            else:
                out.extend(run)
            seen_code = True
            i = j
            continue
        line = lines[i]
        seen_code = seen_code or bool(code.strip())
        multi = MULTI_DECLARATION.match(code) if tracker.at_declaration() else None
        if multi and (pending or is_documentation(comment)):
            doc = escape(pending or comment.strip())
            indent, type_name, declarators = multi.groups()
            line = indent + " ".join(f"{type_name} {d.strip()}; /**< {doc} */"
                                     for d in declarators.split(","))
        elif (is_documentation(comment) and tracker.at_declaration()
              and not code.strip().startswith(("#", "}")) and not FORWARD_DECLARATION.match(code)):
            line = code + "///<" + escape(comment)
        pending = None
        out.append(line)
        tracker.feed(code)
        i += 1
    return out


def main():
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".h"):
        text = "\n".join(filter_header(text.split("\n")))
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
