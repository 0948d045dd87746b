"""The main job (tools/demo_autoslim.py) end to end on tiny data: every
stage through the stage runner, the table's rows, the exported files, a
re-run that reuses every finished stage, and a failing stage that ends with
one ``error:`` line."""
import json
from pathlib import Path

import pytest

from mmchansearch.channel_cfg import load_channel_cfg

N_TRAIN, N_HELDOUT, N_TEST = 64, 32, 32


def _options(root: Path) -> list[str]:
    """Shrinks every stage's config to the tiny data (keys a stage's
    config does not use are ignored by it)."""
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'train_dataloader.dataset.stop={N_TRAIN}',
        'train_dataloader.batch_size=32',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        f'search_loop.dataloader.dataset.dataset.data_root={root}',
        f'search_loop.dataloader.dataset.start={N_TRAIN}',
        f'search_loop.dataloader.dataset.stop={N_TRAIN + N_HELDOUT}',
        'search_loop.calibrate_bn_batches=1',
        'search_loop.targets=[1.7e6]',
    ]


@pytest.fixture(scope='module')
def demo(tmp_path_factory, make_fashion_mnist, run_tool):
    tmp = tmp_path_factory.mktemp('demo')
    root = make_fashion_mnist(tmp / 'data', N_TRAIN + N_HELDOUT, N_TEST)
    work_dir = tmp / 'work'
    args = ['tools/demo_autoslim.py', '--work-dir', work_dir,
            '--latency-rounds', '1', '--json-out', tmp / 'rows.json',
            '--cfg-options', *_options(root)]
    result = run_tool(*args)
    return dict(args=args, result=result, work_dir=work_dir, root=root,
                rows=json.loads((tmp / 'rows.json').read_text()))


def test_the_main_job_prints_searched_next_to_uniform(demo):
    rows = demo['rows']['rows']
    assert [r['target'] for r in rows] == ['1.7M']
    for row in rows:
        assert row['searched_flops'] <= 1.7e6
        assert abs(row['uniform_flops'] - row['searched_flops']) <= \
            0.01 * row['searched_flops']
        for kind in ('searched', 'uniform'):
            assert 0 <= row[f'{kind}_top1'] <= 100
            assert row[f'{kind}_onnx_ms'] > 0
            assert Path(row[f'{kind}_onnx']).stat().st_size
        # params of the exported file, not of the channel_cfg's meta
        yaml = (demo['work_dir'] / 'search' /
                f'subnet_flops-{row["target"]}.yaml')
        assert row['searched_params'] == \
            load_channel_cfg(yaml).meta['params']
    out = demo['result'].stdout
    assert '| target | searched FLOPs |' in out
    assert "fine-tuning from the supernet's weights" in out
    stages = json.loads((demo['work_dir'] / 'stages.json').read_text())
    assert {'supernet', 'search', 'retrain_searched_1.7M',
            'retrain_uniform_1.7M', 'export_uniform_1.7M'} <= set(stages)


def test_the_retrainings_start_from_the_supernet(demo):
    command = json.loads((demo['work_dir'] / 'stages.json').read_text())[
        'retrain_uniform_1.7M']['command']
    assert any(str(part).startswith('model.init_from=') for part in command)
    assert any('subnet-from-supernet' in str(part) for part in command)


def test_a_rerun_reuses_every_stage(demo, run_tool):
    """Every stage is recorded with its time: a stage run again would
    rewrite its record."""
    before = (demo['work_dir'] / 'stages.json').read_text()
    run_tool(*demo['args'])
    assert (demo['work_dir'] / 'stages.json').read_text() == before
    def untimed(rows: list[dict]) -> list[dict]:  # latencies are re-timed
        return [{k: v for k, v in r.items() if not k.endswith('_ms')}
                for r in rows]
    again = json.loads(Path(demo['args'][6]).read_text())['rows']
    assert untimed(again) == untimed(demo['rows']['rows'])


def test_a_failing_stage_ends_with_one_error_line(demo, tmp_path, run_tool):
    args = ['tools/demo_autoslim.py', '--work-dir', tmp_path / 'work',
            '--cfg-options', *_options(demo['root']),
            f'train_dataloader.dataset.dataset.data_root={tmp_path}/none']
    result = run_tool(*args, check=False)
    assert result.returncode == 2
    # the demo's error line, then the end of the stage's log (which holds
    # the tool's own error line: the cause)
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('error:') and 'failed (exit' in line]
    assert len(errors) == 1, result.stderr[-2000:]
    assert errors[0].startswith('error: supernet failed (exit 2)')
    assert 'no such directory' in result.stderr
    assert 'Traceback' not in result.stderr
