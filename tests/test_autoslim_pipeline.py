"""The AutoSlim pipeline end to end, through the tools/ commands users type.

Tiny Fashion-MNIST-format data made here; the demo configs with a few
iterations. Checks the produced files, resume after a kill, and that bad
input fails clearly without overwriting anything.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmchansearch.channel_cfg import load_channel_cfg, validate_channels
from mmchansearch.errors import CheckpointMismatchError
from mmchansearch.export import load_static_model
from mmchansearch.supernet import build_supernet

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs' / 'autoslim'
SUPERNET = CONFIGS / 'autoslim_mbv2_0.5x_supernet_1xb128_fashion-mnist-demo.py'
SEARCH = CONFIGS / 'autoslim_mbv2_0.5x_search_1xb128_fashion-mnist-demo.py'
SUBNET = CONFIGS / 'autoslim_mbv2_0.5x_subnet_1xb128_fashion-mnist-demo.py'
N_TRAIN, N_HELDOUT, N_TEST = 96, 32, 48


def _data_options(root: Path) -> list[str]:
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'train_dataloader.dataset.stop={N_TRAIN}',
        'train_dataloader.batch_size=32',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        'train_cfg.max_epochs=1', 'param_scheduler.1.end=1',
    ]


def _search_options(root: Path) -> list[str]:
    return _data_options(root) + [
        f'search_loop.dataloader.dataset.dataset.data_root={root}',
        f'search_loop.dataloader.dataset.start={N_TRAIN}',
        f'search_loop.dataloader.dataset.stop={N_TRAIN + N_HELDOUT}',
        'search_loop.calibrate_bn_batches=2',
        'search_loop.targets=[1.8e6,1.65e6,1.5e6]',  # a few steps only
    ]


def _subnet_options(root: Path, cfgs: list) -> list[str]:
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'train_dataloader.dataset.stop={N_TRAIN}',
        'train_dataloader.batch_size=32',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        'train_cfg.max_epochs=1', 'param_scheduler.1.end=1',
        'model.channel_cfgs=' + ','.join(str(c) for c in cfgs),
    ]


def _last_checkpoint(work_dir: Path) -> str:
    return (work_dir / 'last_checkpoint').read_text().strip()


@pytest.fixture(scope='module')
def pipeline(tmp_path_factory, make_fashion_mnist, run_tool):
    """Runs supernet training and an uninterrupted search once."""
    tmp = tmp_path_factory.mktemp('autoslim')
    root = make_fashion_mnist(tmp / 'data', N_TRAIN + N_HELDOUT, N_TEST)
    supernet_dir = tmp / 'supernet'
    run_tool('tools/train.py', SUPERNET, '--work-dir', supernet_dir,
          '--cfg-options', *_data_options(root))
    checkpoint = _last_checkpoint(supernet_dir)
    search_dir = tmp / 'search'
    run_tool('tools/search.py', SEARCH, checkpoint, '--work-dir', search_dir,
          '--cfg-options', *_search_options(root))
    return dict(tmp=tmp, root=root, checkpoint=checkpoint,
                search_dir=search_dir)


def _search_yamls(search_dir: Path) -> list[Path]:
    return sorted(search_dir.glob('subnet_flops-*.yaml'),
                  key=lambda p: -load_channel_cfg(p).meta['flops'])


def test_search_writes_one_valid_yaml_per_target(pipeline):
    yamls = _search_yamls(pipeline['search_dir'])
    assert [p.name for p in yamls] == [
        'subnet_flops-1.8M.yaml', 'subnet_flops-1.65M.yaml',
        'subnet_flops-1.5M.yaml']
    supernet = build_supernet(str(SUPERNET))
    mutator = supernet.mutator
    for path, target in zip(yamls, (1.8e6, 1.65e6, 1.5e6)):
        cfg = load_channel_cfg(path)
        validate_channels(cfg, mutator.max_widths)
        assert mutator.estimate(cfg.channels)['flops'] == cfg.meta['flops']
        assert cfg.meta['flops'] <= target
        assert 0 <= cfg.meta['heldout_top1'] <= 100
    assert (pipeline['search_dir'] / 'search_trajectory.png').stat().st_size
    history = json.loads(
        (pipeline['search_dir'] / 'search_history.json').read_text())
    usages = [h['usage'] for h in history]
    assert usages == sorted(usages, reverse=True)


def test_killed_search_resumes_to_the_same_result(pipeline, run_tool):
    work_dir = pipeline['tmp'] / 'search_killed'
    command = [sys.executable, 'tools/search.py', str(SEARCH),
               pipeline['checkpoint'], '--work-dir', str(work_dir),
               '--cfg-options', *_search_options(pipeline['root'])]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    state_file = work_dir / 'search_state.json'
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if state_file.exists() and json.loads(
                state_file.read_text())['step'] >= 3:
            break
        time.sleep(0.2)
    assert process.poll() is None, 'search ended before it could be killed'
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = json.loads(state_file.read_text())['step']
    assert not list(work_dir.glob('subnet_*.yaml'))
    run_tool(*command[1:], '--resume')
    log = '\n'.join(p.read_text() for p in work_dir.glob('*/*.log'))
    assert f'resuming the search at step {killed_at}' in log
    for resumed, reference in zip(_search_yamls(work_dir),
                                  _search_yamls(pipeline['search_dir'])):
        assert resumed.name == reference.name
        assert load_channel_cfg(resumed).channels == \
            load_channel_cfg(reference).channels
        assert load_channel_cfg(resumed).meta['heldout_top1'] == \
            load_channel_cfg(reference).meta['heldout_top1']


@pytest.fixture(scope='module')
def retrained(pipeline, run_tool):
    """The searched subnets retrained jointly and split."""
    yamls = _search_yamls(pipeline['search_dir'])
    work_dir = pipeline['tmp'] / 'retrain'
    run_tool('tools/train.py', SUBNET, '--work-dir', work_dir, '--cfg-options',
             *_subnet_options(pipeline['root'], yamls))
    joint = _last_checkpoint(work_dir)
    run_tool('tools/model_converters/split_checkpoint.py', SUBNET, joint,
             '--channel-cfgs', *yamls)
    return dict(yamls=yamls, work_dir=work_dir, joint=joint)


def test_retrain_split_and_test_agree(pipeline, retrained, run_tool):
    yamls, work_dir, joint = (retrained['yamls'], retrained['work_dir'],
                              retrained['joint'])
    joint_metrics = work_dir / 'joint.json'
    run_tool('tools/test.py', SUBNET, joint, '--out', joint_metrics,
          '--work-dir', work_dir, '--cfg-options',
          *_subnet_options(pipeline['root'], yamls))
    joint_results = json.loads(joint_metrics.read_text())
    supernet_state = torch.load(joint, weights_only=False)['state_dict']

    def conv_linear_size(state: dict, prefix: str = '') -> int:
        # conv / linear weights: the same keys in both, no switchable BN
        return sum(v.numel() for k, v in state.items()
                   if k.startswith(prefix) and k.endswith('.weight')
                   and v.dim() > 1)
    full_size = conv_linear_size(supernet_state, 'architecture.')
    for path in yamls:
        split = Path(joint.replace('.pth', f'_{path.stem}.pth'))
        static = load_static_model(str(SUBNET), str(split))
        state = torch.load(split, weights_only=False)['state_dict']
        for key, value in static.state_dict().items():
            assert state[key].shape == value.shape, key
        assert conv_linear_size(state) < full_size
        assert state['backbone.conv1.conv.weight'].untyped_storage().nbytes() \
            == state['backbone.conv1.conv.weight'].numel() * 4
        out = work_dir / f'{path.stem}.json'
        run_tool('tools/test.py', SUBNET, split, '--out', out, '--work-dir',
              work_dir, '--cfg-options',
              *_subnet_options(pipeline['root'], [path]))
        alone = json.loads(out.read_text())
        assert alone['accuracy/top1'] == \
            joint_results[f'{path.stem}/accuracy/top1']
        assert alone['accuracy/top5'] == \
            joint_results[f'{path.stem}/accuracy/top5']


def _static_state(path: Path) -> dict:
    return torch.load(path, weights_only=False)['state_dict']


def test_export_takes_every_checkpoint_kind(pipeline, retrained, tmp_path,
                                            run_tool):
    """Split, joint (--subnet), single-subnet retraining and supernet +
    channel_cfg checkpoints all export; the same subnet's weights give the
    same static checkpoint whichever file it came from."""
    yamls, joint = retrained['yamls'], retrained['joint']
    path = yamls[1]
    split = joint.replace('.pth', f'_{path.stem}.pth')
    outputs = {}
    for name, args in {
            'split': ['--checkpoint', split],
            'split_same_cfg': ['--checkpoint', split, '--channel-cfg', path],
            'joint': ['--checkpoint', joint, '--subnet', path.stem],
            'joint_index': ['--checkpoint', joint, '--subnet', '1']}.items():
        out = tmp_path / f'{name}.pth'
        onnx = tmp_path / f'{name}.onnx'
        result = run_tool('tools/export_subnet.py', SUBNET, *args, '-o', out,
                          '--onnx', onnx)
        assert 'onnxruntime vs torch' in result.stdout
        assert onnx.stat().st_size
        outputs[name] = _static_state(out)
    for name, state in outputs.items():
        assert state.keys() == outputs['split'].keys(), name
        for key, value in state.items():
            assert torch.equal(value, outputs['split'][key]), (name, key)
    meta = torch.load(tmp_path / 'joint.pth', weights_only=False)['meta']
    assert meta['channel_cfg']['channels'] == \
        load_channel_cfg(path).channels

    # a retraining of one subnet: its channel_cfg is in the checkpoint meta
    single_dir = tmp_path / 'single'
    run_tool('tools/train.py', SUBNET, '--work-dir', single_dir,
             '--cfg-options', *_subnet_options(pipeline['root'], [path]))
    single = _last_checkpoint(single_dir)
    stored = torch.load(single, weights_only=False)['meta']['channel_cfgs']
    assert [e['name'] for e in stored] == [path.stem]
    run_tool('tools/export_subnet.py', SUBNET, '--checkpoint', single, '-o',
             tmp_path / 'single.pth', '--onnx', tmp_path / 'single.onnx',
             '--benchmark')
    static = load_static_model(str(SUBNET), str(tmp_path / 'single.pth'))
    assert sum(p.numel() for p in static.parameters()) == \
        load_channel_cfg(path).meta['params']

    # supernet weights + a channel_cfg
    run_tool('tools/export_subnet.py', SUBNET, '--checkpoint',
             pipeline['checkpoint'], '--channel-cfg', path, '-o',
             tmp_path / 'from_supernet.pth')


def test_export_refuses_ambiguous_or_mismatched_input(pipeline, retrained,
                                                      tmp_path, run_tool):
    yamls, joint = retrained['yamls'], retrained['joint']
    split = joint.replace('.pth', f'_{yamls[0].stem}.pth')
    cases = [
        (['--checkpoint', joint], 'jointly trained subnets'),
        (['--checkpoint', joint, '--subnet', 'nope'], 'no subnet'),
        (['--checkpoint', split, '--channel-cfg', yamls[1]],
         'not ' + str(yamls[1])),
        (['--checkpoint', pipeline['checkpoint']], '--channel-cfg'),
        (['--checkpoint', split, '--benchmark'], '--onnx'),
    ]
    for args, message in cases:
        out = tmp_path / 'out.pth'
        result = run_tool('tools/export_subnet.py', SUBNET, *args, '-o', out,
                          check=False)
        assert result.returncode == 2, args
        assert message in result.stderr, (args, result.stderr)
        assert 'Traceback' not in result.stderr
        assert not out.exists()
    result = run_tool('tools/export_subnet.py', SUBNET, '--checkpoint', split,
                      '-o', split, check=False)
    assert result.returncode == 2 and 'is an input' in result.stderr
    result = run_tool('tools/export_subnet.py', SUBNET, '--channel-cfg',
                      yamls[0], '-o', tmp_path / 'random.pth')
    assert 'RANDOM weights' in result.stderr


def test_config_with_mmpretrain_scope_trains(pipeline, tmp_path, run_tool):
    """A user's config keeps mmpretrain's default_scope (its runtime sets
    it); the toolbox's types are found all the same."""
    user_cfg = tmp_path / 'my_autoslim.py'
    user_cfg.write_text(f"_base_ = [r'{SUPERNET}']\n"
                        "default_scope = 'mmpretrain'\n")
    work_dir = tmp_path / 'scoped'
    run_tool('tools/train.py', user_cfg, '--work-dir', work_dir,
             '--cfg-options', *_data_options(pipeline['root']),
             f'train_dataloader.dataset.stop={N_TRAIN // 3}')
    assert (work_dir / 'epoch_1.pth').exists()


def test_resume_with_an_empty_last_checkpoint_uses_the_newest(
        pipeline, tmp_path, run_tool):
    """A kill can leave last_checkpoint empty; --resume then continues from
    the newest complete checkpoint instead of failing or restarting."""
    work_dir = tmp_path / 'resumed'
    work_dir.mkdir()
    source = Path(pipeline['checkpoint'])
    (work_dir / source.name).write_bytes(source.read_bytes())
    (work_dir / 'last_checkpoint').write_text('')
    (work_dir / 'epoch_9.pth').write_bytes(b'truncated')  # newer, broken
    result = run_tool('tools/train.py', SUPERNET, '--work-dir', work_dir,
                      '--resume', '--cfg-options',
                      *_data_options(pipeline['root']),
                      'train_cfg.max_epochs=2', 'param_scheduler.1.end=2')
    assert f'complete checkpoint {work_dir / source.name}' in result.stdout
    assert (work_dir / 'epoch_2.pth').exists()
    assert (work_dir / 'last_checkpoint').read_text().strip().endswith(
        'epoch_2.pth')


def test_killed_supernet_training_resumes_to_the_same_weights(
        tmp_path, make_fashion_mnist, run_tool, kill_when, final_state):
    """kill -9 after the first of three epochs (validating every epoch),
    --resume: the weights are the uninterrupted run's, bit for bit. The
    width sampler (seeded from Python's generator) and the generators are
    in the checkpoints (RandomStateHook)."""
    root = make_fashion_mnist(tmp_path / 'data', N_TRAIN, N_TEST)
    options = ['--cfg-options', *_data_options(root),
               'train_cfg.max_epochs=3', 'param_scheduler.1.end=3',
               'train_cfg.val_interval=1', 'val_cfg.calibrate_bn_batches=1']
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    run_tool('tools/train.py', SUPERNET, '--work-dir', straight, *options)
    kill_when(lambda: (killed / 'epoch_1.pth').exists(), 'tools/train.py',
              SUPERNET, '--work-dir', killed, *options)
    assert not (killed / 'epoch_3.pth').exists()
    run_tool('tools/train.py', SUPERNET, '--work-dir', killed, '--resume',
             *options)
    assert _last_checkpoint(killed).endswith('epoch_3.pth')
    expected, resumed = final_state(straight), final_state(killed)
    assert resumed.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(resumed[key], value), key


def test_channel_cfg_of_another_model_is_refused(pipeline, tmp_path, run_tool):
    other = tmp_path / 'resnet.yaml'
    resnet = tmp_path / 'resnet18_plain.py'
    resnet.write_text(
        "model = dict(type='ImageClassifier', backbone=dict(type='ResNet', "
        "depth=18), neck=dict(type='GlobalAveragePooling'), head=dict("
        "type='LinearClsHead', num_classes=10, in_channels=512))\n")
    run_tool('tools/get_channel_template.py', resnet, '-o', other,
          '--shape', '32', '32')
    work_dir = tmp_path / 'bad_retrain'
    result = run_tool('tools/train.py', SUBNET, '--work-dir', work_dir,
                   '--cfg-options',
                   *_subnet_options(pipeline['root'], [other]), check=False)
    assert result.returncode == 2
    assert 'unknown group' in result.stderr
    assert 'Traceback' not in result.stderr


def test_target_below_the_smallest_subnet_is_refused(pipeline, tmp_path,
                                                     run_tool):
    work_dir = tmp_path / 'bad_search'
    work_dir.mkdir()
    marker = work_dir / 'subnet_flops-1K.yaml'
    marker.write_text('channels: {a: 1}\n')
    result = run_tool('tools/search.py', SEARCH, pipeline['checkpoint'],
                   '--work-dir', work_dir, '--cfg-options',
                   *_search_options(pipeline['root']),
                   'search_loop.targets=[1e3]', check=False)
    assert result.returncode == 2
    assert 'below the smallest subnet' in result.stderr
    assert marker.read_text() == 'channels: {a: 1}\n'
    assert not (work_dir / 'search_state.json').exists()


@pytest.mark.parametrize('option, message', [
    ('search_loop.targets=[3e6,3e6]', 'same result name twice'),
    ('search_loop.targets=[1.5e6,-1.0]', 'not a positive finite'),
    ('search_loop.calibrate_bn_batches=0', 'give 1 or more'),
])
def test_bad_search_options_are_refused(pipeline, tmp_path, run_tool, option,
                                        message):
    result = run_tool('tools/search.py', SEARCH, pipeline['checkpoint'],
                      '--work-dir', tmp_path / 'bad', '--cfg-options',
                      *_search_options(pipeline['root']), option, check=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert 'Traceback' not in result.stderr
    assert not list((tmp_path / 'bad').glob('subnet_*.yaml'))


def test_a_diverged_supernet_stops_the_search(pipeline, tmp_path,
                                              run_tool):
    checkpoint = torch.load(pipeline['checkpoint'], weights_only=False)
    conv = next(k for k, v in checkpoint['state_dict'].items()
                if v.dim() == 4)
    checkpoint['state_dict'][conv].fill_(float('nan'))
    broken = tmp_path / 'nan.pth'
    torch.save(checkpoint, broken)
    work_dir = tmp_path / 'search'
    result = run_tool('tools/search.py', SEARCH, broken, '--work-dir',
                      work_dir, '--cfg-options',
                      *_search_options(pipeline['root']), check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert 'error: greedy search step 0 (the widest subnet): non-finite ' \
        'held-out loss = nan' in result.stderr
    assert 'check the checkpoint' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not list(work_dir.glob('subnet_*.yaml'))
    assert not (work_dir / 'search_history.json').exists()


def test_checkpoint_that_does_not_match_is_refused(pipeline, tmp_path,
                                                   run_tool):
    yamls = _search_yamls(pipeline['search_dir'])
    # a supernet checkpoint is not a checkpoint of one static subnet
    result = run_tool('tools/test.py', SUBNET, pipeline['checkpoint'],
                   '--work-dir', tmp_path, '--cfg-options',
                   *_subnet_options(pipeline['root'], yamls[-1:]),
                   check=False)
    assert result.returncode == 2
    assert 'does not match' in result.stderr
    assert 'shape mismatch' in result.stderr


def test_search_state_is_written_atomically(pipeline):
    leftovers = [p for p in pipeline['search_dir'].iterdir()
                 if p.name.endswith('.tmp')]
    assert not leftovers
    state = json.loads(
        (pipeline['search_dir'] / 'search_state.json').read_text())
    assert len(state['reached']) == 3
    assert os.stat(pipeline['search_dir'] / 'search_state.json').st_mode \
        & 0o044, 'state file should be readable like any other file'


def test_greedy_search_meets_a_latency_budget(pipeline, tmp_path, run_tool):
    lut = tmp_path / 'lut.json'
    run_tool('tools/build_latency_lut.py', SEARCH, '--device', 'cpu',
             '--warmup', '2', '--repeats', '3', '-o', lut)
    cfg = Config.fromfile(SEARCH)
    cfg.model.mutator.latency_table = str(lut)
    mutator = build_supernet(cfg).mutator
    widest = mutator.estimate(mutator.max_widths)['latency']
    narrowest = mutator.estimate(
        {g: mutator.candidates(g)[0] for g in mutator.max_widths})['latency']
    # timings are noisy: any target above the narrowest subnet is valid
    target = round(narrowest + 0.5 * abs(widest - narrowest) + 1e-3, 4)
    work_dir = tmp_path / 'search'
    run_tool('tools/search.py', SEARCH, pipeline['checkpoint'],
             '--work-dir', work_dir, '--cfg-options',
             *_search_options(pipeline['root']),
             f'model.mutator.latency_table={lut}',
             "search_loop.constraint='latency'",
             f'search_loop.targets=[{target}]')
    result = load_channel_cfg(work_dir / f'subnet_latency-{target:g}ms.yaml')
    assert result.meta['latency'] <= target
    assert mutator.estimate(result.channels)['latency'] == pytest.approx(
        result.meta['latency'])


def _snapshot(folder: Path) -> dict:
    """The search's own files (state, history, results) in ``folder``."""
    return {p.name: p.read_bytes() for p in folder.iterdir()
            if p.suffix in ('.json', '.yaml')}


def test_search_without_resume_over_an_earlier_one_is_refused(
        pipeline, tmp_path, run_tool):
    """Forgetting --resume must not overwrite a search's state."""
    work_dir = tmp_path / 'again'
    command = ['tools/search.py', SEARCH, pipeline['checkpoint'],
               '--work-dir', work_dir, '--cfg-options',
               *_search_options(pipeline['root'])]
    work_dir.mkdir()
    for path in pipeline['search_dir'].glob('*.json'):
        (work_dir / path.name).write_bytes(path.read_bytes())
    before = _snapshot(work_dir)
    result = run_tool(*command, check=False)
    assert result.returncode == 2, result.stderr
    assert 'add --resume to continue it, --force to start over' in \
        result.stderr
    assert 'Traceback' not in result.stderr
    assert _snapshot(work_dir) == before
    run_tool(*command, '--force')  # starts over on purpose
    assert [p.name for p in _search_yamls(work_dir)] == [
        p.name for p in _search_yamls(pipeline['search_dir'])]


@pytest.mark.parametrize('change, named', [
    ('config', 'config.search_loop'), ('checkpoint', 'checkpoint')])
def test_resume_against_another_config_or_checkpoint_is_refused(
        pipeline, tmp_path, run_tool, change, named):
    work_dir = tmp_path / 'resumed'
    work_dir.mkdir()
    state = pipeline['search_dir'] / 'search_state.json'
    (work_dir / state.name).write_bytes(state.read_bytes())
    checkpoint, options = pipeline['checkpoint'], []
    if change == 'config':
        options = ['search_loop.num_batches=1']
    else:  # the same file name, other weights
        ckpt = torch.load(checkpoint, weights_only=False)
        first = next(iter(ckpt['state_dict']))
        ckpt['state_dict'][first] = ckpt['state_dict'][first] + 1
        checkpoint = tmp_path / 'other.pth'
        torch.save(ckpt, checkpoint)
    before = _snapshot(work_dir)
    result = run_tool('tools/search.py', SEARCH, checkpoint, '--work-dir',
                      work_dir, '--resume', '--cfg-options',
                      *_search_options(pipeline['root']), *options,
                      check=False)
    assert result.returncode == 2, result.stderr
    assert f'was made with another {named}' in result.stderr
    assert 'Traceback' not in result.stderr
    assert _snapshot(work_dir) == before


def test_search_on_two_processes_matches_one(pipeline, run_torchrun,
                                             tmp_path):
    """torchrun with 2 gloo processes: each rank scores whole held-out
    batches of the one-process order, counts are summed, BN recalibration
    on the same training batches is averaged over the ranks; the results
    are one process's: the same subnets, held-out accuracy within 0.01
    points (float summation order)."""
    work_dir = tmp_path / 'dist'
    run_torchrun(2, 'tools/search.py', SEARCH, pipeline['checkpoint'],
                 '--work-dir', work_dir, '--cfg-options',
                 *_search_options(pipeline['root']))
    single = _search_yamls(pipeline['search_dir'])
    double = _search_yamls(work_dir)
    assert [p.name for p in double] == [p.name for p in single]
    for a, b in zip(double, single):
        a, b = load_channel_cfg(a), load_channel_cfg(b)
        assert a.channels == b.channels
        assert abs(a.meta['heldout_top1'] - b.meta['heldout_top1']) <= 0.01


def _subnet_from_supernet(checkpoint: str, yamls: list) -> torch.nn.Module:
    """The retraining model of ``yamls`` started from the supernet."""
    cfg = Config.fromfile(SUBNET)
    cfg.model.channel_cfgs = [str(p) for p in yamls]
    cfg.model.init_from = checkpoint
    model = build_supernet(cfg, keep_algorithm=True)
    model.init_weights()
    return model


@pytest.mark.parametrize('joint', [False, True], ids=['alone', 'joint'])
def test_subnets_start_from_the_supernet_weights(pipeline, run_tool,
                                                 tmp_path, joint):
    """model.init_from slices the supernet to every subnet: each subnet
    equals the static network tools/export_subnet.py cuts from the same
    supernet checkpoint (weights, BN statistics and outputs)."""
    yamls = _search_yamls(pipeline['search_dir'])
    chosen = yamls[:2] if joint else yamls[1:2]
    model = _subnet_from_supernet(pipeline['checkpoint'], chosen).eval()
    x = torch.randn(2, 3, 28, 28)
    for index, path in enumerate(chosen):
        out = tmp_path / f'{path.stem}.pth'
        run_tool('tools/export_subnet.py', SUPERNET, '--checkpoint',
                 pipeline['checkpoint'], '--channel-cfg', path, '-o', out)
        reference = load_static_model(str(SUPERNET), str(out)).eval()
        model.activate(index)
        subnet = (model.architecture if model.is_static
                  else model.mutator.export_static()).eval()
        expected = reference.state_dict()
        got = subnet.state_dict()
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            assert torch.equal(got[key], value), (path.stem, key)
        with torch.no_grad():
            torch.testing.assert_close(model(x), reference(x))


def test_subnet_training_from_the_supernet_keeps_its_start(pipeline,
                                                          tmp_path,
                                                          run_tool):
    """tools/train.py applies model.init_from after mmengine's weight
    initialization: with a learning rate of 0 the trained subnet's
    convolutions are the supernet's slices (a re-initialization or a
    skipped load would change them)."""
    path = _search_yamls(pipeline['search_dir'])[1]
    work_dir = tmp_path / 'from_supernet'
    run_tool('tools/train.py', SUBNET, '--work-dir', work_dir,
             '--cfg-options', *_subnet_options(pipeline['root'], [path]),
             f'model.init_from={pipeline["checkpoint"]}',
             'optim_wrapper.optimizer.lr=0.0',
             'optim_wrapper.optimizer.weight_decay=0.0')
    trained = torch.load(_last_checkpoint(work_dir),
                         weights_only=False)['state_dict']
    start = _subnet_from_supernet(pipeline['checkpoint'], [path])
    convs = [k for k, v in start.state_dict().items() if v.dim() == 4]
    assert convs
    for key in convs:
        assert torch.equal(trained[key], start.state_dict()[key]), key
    scratch = _subnet_from_supernet(None, [path])
    assert not torch.equal(scratch.state_dict()[convs[0]],
                           start.state_dict()[convs[0]])


def test_load_from_that_does_not_match_is_refused(pipeline, tmp_path,
                                                  run_tool):
    """mmengine would load a mismatching load_from only partly (a warning
    in the log); tools/train.py refuses it and names model.init_from."""
    path = _search_yamls(pipeline['search_dir'])[-1]
    result = run_tool('tools/train.py', SUBNET, '--work-dir', tmp_path,
                      '--cfg-options',
                      *_subnet_options(pipeline['root'], [path]),
                      f'load_from={pipeline["checkpoint"]}', check=False)
    assert result.returncode == 2
    assert 'does not match' in result.stderr
    assert 'model.init_from' in result.stderr
    assert not list(tmp_path.glob('epoch_*.pth'))


def test_a_supernet_start_that_does_not_match_is_refused(pipeline, tmp_path):
    """init_from must be a checkpoint of the supernet the subnet config
    builds; a subnet checkpoint is refused, not loaded partly."""
    path = _search_yamls(pipeline['search_dir'])[-1]
    subnet_ckpt = tmp_path / 'subnet.pth'
    torch.save({'state_dict': _subnet_from_supernet(
        pipeline['checkpoint'], [path]).state_dict()}, subnet_ckpt)
    with pytest.raises(CheckpointMismatchError, match='shape mismatch'):
        _subnet_from_supernet(str(subnet_ckpt), [path])
