"""Every config resolves to the dict recorded in
``tests/data/resolved_configs.json``.

The configs are short because they share fragments in ``configs/_base_/``;
moving a key between fragments, renaming a base or reordering ``_base_``
must not change what any config resolves to. A change of a config's
meaning is deliberate: record it again with

    python tests/test_config_snapshot.py

and the diff of the JSON file (one line per config) shows what changed.
``configs/your_data/`` is not recorded: its bases are mmpretrain's own
configs (see tests/test_shipped_configs.py).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs'
RECORD = REPO / 'tests' / 'data' / 'resolved_configs.json'
CONFIG_FILES = [p for p in sorted(CONFIGS.rglob('*.py'))
                if p.relative_to(CONFIGS).parts[0] != 'your_data']


def resolved(path: Path) -> dict:
    """What ``path`` resolves to, as plain JSON values."""
    return json.loads(json.dumps(Config.fromfile(path).to_dict(),
                                 sort_keys=True, default=repr))


def differences(a, b, where: str = '') -> Iterator[str]:
    """The key paths where ``a`` and ``b`` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                yield f'{where}.{key}: only in the ' \
                      f'{"record" if key in b else "config"}'
            else:
                yield from differences(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f'{where}[{i}]')
    elif a != b:
        yield f'{where}: {a!r} != recorded {b!r}'


def _record() -> dict:
    return json.loads(RECORD.read_text())


def test_every_config_is_recorded():
    names = {str(p.relative_to(CONFIGS)) for p in CONFIG_FILES}
    assert len(names) >= 50
    assert names == set(_record()), \
        'configs added or removed: record them (see the module docstring)'


@pytest.mark.parametrize('config', CONFIG_FILES,
                         ids=[str(p.relative_to(CONFIGS))
                              for p in CONFIG_FILES])
def test_config_resolves_as_recorded(config):
    recorded = _record().get(str(config.relative_to(CONFIGS)))
    assert recorded is not None, 'not recorded (see the module docstring)'
    found = list(differences(resolved(config), recorded))
    assert not found, '\n'.join(found[:20])


def write_record() -> None:
    """Records every config (one line each)."""
    lines = [f'{json.dumps(str(p.relative_to(CONFIGS)))}: '
             f'{json.dumps(resolved(p), sort_keys=True)}'
             for p in CONFIG_FILES]
    RECORD.parent.mkdir(exist_ok=True)
    RECORD.write_text('{\n' + ',\n'.join(lines) + '\n}\n')


if __name__ == '__main__':
    write_record()
    print(f'recorded {len(CONFIG_FILES)} configs in {RECORD}')
