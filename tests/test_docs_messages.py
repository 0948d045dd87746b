"""Every message docs/troubleshooting.md lists is still printed by the code.

The doc's tables quote each message in backticks in their first column,
with the values it names as UPPERCASE placeholders (``X``, ``N``, ``PATH``)
or ``...`` (also ``[...]``, ``(...)``, ``{...}``). The text between
placeholders is fixed: each such fragment (of at least
``MIN_FRAGMENT`` characters) must occur in one string literal of
``mmchansearch/`` or ``tools/``, within the fixed text between two of its
f-string fields. Docstrings do not count. Rows of other libraries'
messages are marked ``(mmpretrain)`` or ``(mmengine)`` and skipped.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / 'docs' / 'troubleshooting.md'
SOURCES = ('mmchansearch', 'tools')
# shorter fragments ('; use ', ' is not ') would match almost anywhere
MIN_FRAGMENT = 12
FIELD = '\x00'  # stands for an f-string field in the source text
PLACEHOLDER = re.compile(r"""
    (?: '(?:[A-Z][A-Z0-9_]*|\.\.\.)'   # a quoted value: 'X' (from {x!r})
      | [\[({]\.\.\.[\])}]            # a listed value: [...] (...) {...}
      | \.\.\. | …
      | \b[A-Z][A-Z0-9_]*\b )
    (?: [./]\w[\w./-]* )?             # its path or extension: W/x.json, X.gz
    """, re.VERBOSE)
OTHER_LIBRARY = re.compile(r'\((mmpretrain|mmengine)\b')


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings (or bare strings)."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr)
            and isinstance(node.value, (ast.Constant, ast.JoinedStr))}


def _fixed_text(node: ast.AST) -> str | None:
    """A string literal's text, its f-string fields as FIELD."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return ''.join(
            part.value if isinstance(part, ast.Constant) else FIELD
            for part in node.values)
    return None


def _source_texts() -> list[str]:
    """The fixed parts of every string literal of the package and tools,
    backticks dropped (the doc's code spans cannot hold them)."""
    texts = []
    for folder in SOURCES:
        for path in sorted((REPO / folder).rglob('*.py')):
            tree = ast.parse(path.read_text(encoding='utf-8'))
            skip = _docstrings(tree)
            for node in ast.walk(tree):
                if id(node) in skip or isinstance(node, ast.FormattedValue):
                    continue
                text = _fixed_text(node)
                if text is not None:
                    texts += text.replace('`', '').split(FIELD)
    return texts


def _first_cell(row: str) -> str:
    """The first column of a table row (code spans may hold ``|``)."""
    cell, in_code = [], False
    for char in row.strip()[1:]:
        if char == '`':
            in_code = not in_code
        elif char == '|' and not in_code:
            break
        cell.append(char)
    return ''.join(cell).strip()


def _documented_messages() -> list[tuple[int, str]]:
    """(line number, quoted text) of every message of the doc's tables."""
    messages = []
    for number, line in enumerate(
            DOC.read_text(encoding='utf-8').splitlines(), start=1):
        if not line.startswith('|') or set(line) <= set('|- '):
            continue
        cell = _first_cell(line)
        if cell == 'message' or OTHER_LIBRARY.search(cell):
            continue
        messages += [(number, span) for span in re.findall(r'`([^`]+)`',
                                                           cell)]
    return messages


def _fragments(message: str) -> list[str]:
    """The fixed fragments of a quoted message, long enough to check."""
    # the punctuation next to a placeholder may be the code's or the doc's
    parts = (part.strip(' .,:;') for part in PLACEHOLDER.split(message))
    return [part for part in parts if len(part) >= MIN_FRAGMENT]


def test_the_doc_quotes_messages():
    messages = _documented_messages()
    assert len(messages) > 100
    # every row has at least one fragment to look for
    rows = {number for number, message in messages if _fragments(message)}
    assert rows == {number for number, _ in messages}, sorted(
        {number for number, _ in messages} - rows)


@pytest.fixture(scope='module')
def source_texts() -> list[str]:
    return _source_texts()


def test_every_documented_message_is_in_the_code(source_texts):
    stale = []
    for number, message in _documented_messages():
        for fragment in _fragments(message):
            if not any(fragment in text for text in source_texts):
                stale.append(f'line {number}: {fragment!r} (of {message!r})')
    assert not stale, 'not in mmchansearch/ or tools/:\n' + '\n'.join(stale)


@pytest.mark.parametrize('message, found', [
    ('config X: no such file.', True),
    ('config X: no such files at all.', False),  # a changed fixed part
    ('SubsetDataset: range [A, B) does not fit the wrapped X', True),
    ('SubsetDataset: range [a, b) does not fit the wrapped X', False),
])
def test_fragments_match_only_the_fixed_text(source_texts, message, found):
    """The check itself: placeholders split, lowercase values do not."""
    fragments = _fragments(message)
    assert fragments
    assert all(any(f in text for text in source_texts)
               for f in fragments) is found
