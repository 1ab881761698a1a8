#!/usr/bin/env python3
"""Checks that SQL is built only from string literals with bound parameters.

Usage: scripts/check-sql.py [FILE...]   (default: server/sqlite_store.cc)

Fails (exit 1, naming file and line) when
  - a string literal holding SQL (an upper-case keyword: SELECT, INSERT, UPDATE, DELETE, ...) is
    an argument of StrCat/StrAppend/StrFormat/Substitute/append/std::string(...), or is joined
    with `+` or `<<` (values must go through sqlite3_bind_*, never into the SQL text);
  - sqlite3_prepare*/sqlite3_exec is given anything but the `sql` parameter of a
    `const char* sql` wrapper, or a wrapper (Stmt, Exec) is given .c_str()/.data() of a string
    built at run time;
  - sqlite3_mprintf/snprintf/sprintf appear at all.
tests/server/testdata/concat_sql.cc.txt is a file this script must reject (ctest checks both).
"""
import re
import sys

SQL = re.compile(r'\b(SELECT|INSERT|UPDATE|DELETE|REPLACE|FROM|WHERE|VALUES|CREATE|DROP|ALTER|'
                 r'PRAGMA|ORDER BY|LIMIT|JOIN|SET)\b')
LIT = re.compile(r'"(?:[^"\\\n]|\\.)*"')
BUILDERS = re.compile(r'\b(StrCat|StrAppend|StrFormat|Substitute|append|std::string|string)\s*\(')


def strip_comments(text):
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith('//', i):
            j = text.find('\n', i)
            i = n if j < 0 else j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            chunk = text[i:(n if j < 0 else j + 2)]
            out.append('\n' * chunk.count('\n'))
            i = n if j < 0 else j + 2
        elif text[i] == '"':
            m = LIT.match(text, i)
            if not m:
                out.append(text[i]); i += 1; continue
            out.append(m.group(0)); i = m.end()
        else:
            out.append(text[i]); i += 1
    return ''.join(out)


def call_args(text, open_paren):
    """Text between the parenthesis at open_paren and its match."""
    depth, i = 0, open_paren
    while i < len(text):
        c = text[i]
        if c == '"':
            m = LIT.match(text, i)
            i = m.end() if m else i + 1
            continue
        if c == '(':
            depth += 1
        elif c == ')':
            depth -= 1
            if depth == 0:
                return text[open_paren + 1:i]
        i += 1
    return text[open_paren + 1:]


def check(path):
    text = strip_comments(open(path, encoding='utf-8').read())
    line_of = lambda pos: text.count('\n', 0, pos) + 1
    problems = []
    for m in BUILDERS.finditer(text):
        args = call_args(text, m.end() - 1)
        for lit in LIT.findall(args):
            if SQL.search(lit):
                problems.append((line_of(m.start()), f'SQL literal {lit[:50]} passed to {m.group(1)}()'))
    for m in LIT.finditer(text):
        if not SQL.search(m.group(0)):
            continue
        before = text[:m.start()].rstrip()
        after = text[m.end():].lstrip()
        if before.endswith('+') or before.endswith('<<') or after.startswith('+') or \
                after.startswith('<<'):
            problems.append((line_of(m.start()), f'SQL literal {m.group(0)[:50]} joined with + or <<'))
    for m in re.finditer(r'\b(sqlite3_prepare(?:_v2|_v3)?|sqlite3_exec)\s*\(', text):
        args = [a.strip() for a in call_args(text, m.end() - 1).split(',')]
        if len(args) < 2 or args[1] != 'sql':
            problems.append((line_of(m.start()), f'{m.group(1)} gets {args[1] if len(args) > 1 else "?"}, '
                             'not the const char* sql parameter'))
    if re.search(r'\b(sqlite3_prepare(?:_v2|_v3)?|sqlite3_exec)\s*\(', text) and \
            not re.search(r'const char\*\s*sql\b', text):
        problems.append((1, 'no `const char* sql` wrapper around sqlite3_prepare/sqlite3_exec'))
    for m in re.finditer(r'\b(Stmt\s+\w+\s*\(|Exec\s*\()', text):
        args = call_args(text, m.end() - 1)
        if re.search(r'\.(c_str|data)\s*\(\s*\)', args):
            problems.append((line_of(m.start()), 'SQL wrapper given .c_str()/.data() of a built string'))
    for m in re.finditer(r'\b(sqlite3_mprintf|sqlite3_vmprintf|snprintf|sprintf)\s*\(', text):
        problems.append((line_of(m.start()), f'{m.group(1)} (format SQL with bound parameters instead)'))
    return problems


def main():
    files = sys.argv[1:] or ['server/sqlite_store.cc']
    bad = 0
    for f in files:
        for line, what in check(f):
            print(f'{f}:{line}: {what}')
            bad += 1
    if bad:
        print(f'check-sql: {bad} problem(s)')
        return 1
    print(f'check-sql: {", ".join(files)}: SQL only from literals with bound parameters')
    return 0


if __name__ == '__main__':
    sys.exit(main())
