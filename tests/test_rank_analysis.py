"""Rank measures, the random-layer study and its tool."""
from __future__ import annotations

import csv
import runpy
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_tool_process
from mmengine.registry import DefaultScope
from torch import nn

from mmchansearch.rank_analysis import (
    ACTIVATION_TYPES,
    ACTIVATIONS,
    GramAccumulator,
    ShortcutBlock,
    cumulative_singular_values,
    default_rtol,
    feature_spectra,
    layer_rank_ratio,
    make_layer,
    nuclear_norm,
    numerical_rank,
    rank_ratio_sweep,
    spectrum,
)
from mmchansearch.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / 'tools' / 'analysis_tools' / 'rank_analysis.py'
BASE = REPO / 'configs' / '_base_'


# ---------------------------------------------------------------- measures
def test_rank_of_identity_and_of_a_product():
    assert numerical_rank(torch.eye(12)) == 12
    gen = torch.Generator().manual_seed(0)
    low = torch.randn(50, 5, generator=gen) @ torch.randn(5, 20,
                                                           generator=gen)
    assert numerical_rank(low) == 5
    assert numerical_rank(torch.zeros(4, 3)) == 0


def test_rank_tolerance_drops_small_singular_values():
    features = torch.diag(torch.tensor([1.0, 0.5, 1e-3]))
    assert numerical_rank(features) == 3
    assert numerical_rank(features, rtol=1e-2) == 2


def test_nuclear_norm_and_cumulative_curve():
    assert nuclear_norm(torch.eye(8) * 3) == pytest.approx(8)
    assert nuclear_norm(torch.eye(8) * 3, normalize=False) == \
        pytest.approx(24)
    curve = cumulative_singular_values(torch.eye(4))
    torch.testing.assert_close(
        curve, torch.tensor([0.25, 0.5, 0.75, 1.0], dtype=torch.float64))


def test_conv_features_become_rows_of_positions():
    features = torch.randn(2, 6, 3, 3)
    spec = spectrum(features)
    assert (spec.rows, spec.cols) == (18, 6)


def test_gram_accumulator_matches_the_direct_spectrum():
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 10, 3, 3, generator=gen) for _ in range(3)]
    acc = GramAccumulator()
    for batch in batches:
        acc.update(batch)
    streamed, direct = acc.spectrum(), spectrum(torch.cat(batches))
    assert streamed.rows == direct.rows == 108
    torch.testing.assert_close(streamed.values, direct.values)
    assert streamed.rank() == direct.rank() == 10


def test_feature_spectra_hooks_every_conv_or_activation():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 4, 1)).eval()
    batches = [torch.randn(2, 3, 5, 5) for _ in range(2)]
    spectra = feature_spectra(model, batches)
    assert list(spectra) == ['0', '2']
    assert (spectra['0'].rows, spectra['0'].cols) == (100, 8)
    assert not model[0]._forward_hooks  # hooks removed
    assert list(feature_spectra(model, batches, ACTIVATION_TYPES)) == ['1']


# ------------------------------------------------------------ layer study
def test_full_rank_square_linear_layer():
    assert layer_rank_ratio('conv1x1', 32, 32, 'Identity') == 1.0


def test_linear_layer_is_bounded_by_its_inputs():
    assert layer_rank_ratio('conv1x1', 8, 32, 'Identity') == 0.25


@pytest.mark.parametrize('activation', ACTIVATIONS[1:])
def test_nonlinearity_raises_the_rank(activation):
    linear = layer_rank_ratio('conv1x1', 8, 32, 'Identity')
    assert layer_rank_ratio('conv1x1', 8, 32, activation) > linear


@pytest.mark.parametrize('kind', ['conv3x3', 'ib_conv', 'ib_dwconv'])
def test_every_kind_runs(kind):
    assert 0 < layer_rank_ratio(kind, 4, 16, 'SiLU') <= 1


def test_sweep_has_one_row_per_cell():
    calls = []
    rows = rank_ratio_sweep(['conv1x1'], ['Identity', 'ReLU'], [0.25, 1.0],
                            num_layers=2, d_out_range=(8, 16),
                            progress=lambda: calls.append(1))
    assert len(rows) == len(calls) == 4
    identity = {r['ratio']: r['rank_ratio'] for r in rows
                if r['activation'] == 'Identity'}
    assert identity[0.25] == pytest.approx(0.25, abs=0.05)
    assert identity[1.0] == 1.0


# f = conv + BN + nonlinearity, written out with torch.nn.functional
def _bn(y: torch.Tensor) -> torch.Tensor:
    """BN over the batch, unit weight, zero bias."""
    mean = y.mean((0, 2, 3), keepdim=True)
    var = y.var((0, 2, 3), unbiased=False, keepdim=True)
    return (y - mean) / torch.sqrt(var + 1e-5)


def _hand_built(kind: str, d_in: int, d_out: int, act, seed: int,
                size: int = 8, expand: int = 6) -> torch.Tensor:
    """The output of one study layer from the same random draws: He-normal
    weights of the convs in order, then the input batch."""
    gen = torch.Generator().manual_seed(seed)

    def weight(shape):
        fan_in = shape[1] * shape[2] * shape[3]
        return torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5

    if kind == 'conv1x1':
        shapes = [((d_out, d_in, 1, 1), 1)]
    else:  # ib_dwconv
        hidden = d_in * expand
        shapes = [((hidden, d_in, 1, 1), 1), ((hidden, 1, 3, 3), hidden),
                  ((d_out, hidden, 1, 1), 1)]
    weights = [(weight(shape), groups) for shape, groups in shapes]
    batch = -(-4 * d_out // (size * size))
    x = torch.randn(batch, d_in, size, size, generator=gen)
    y = x
    for w, groups in weights:
        y = act(_bn(F.conv2d(y, w, padding=w.shape[-1] // 2,
                             groups=groups)))
    if kind == 'ib_dwconv':  # measured after the shortcut add
        y = torch.cat([y[:, :d_in] + x, y[:, d_in:]], dim=1)
    return y.permute(0, 2, 3, 1).reshape(-1, d_out).double()


@pytest.mark.parametrize('kind, d_in, d_out, act, name', [
    ('conv1x1', 8, 32, torch.relu, 'ReLU'),
    ('conv1x1', 12, 24, F.silu, 'SiLU'),
    ('ib_dwconv', 4, 16, F.relu6, 'ReLU6'),
    ('ib_dwconv', 6, 12, F.silu, 'SiLU'),
])
@pytest.mark.parametrize('rtol', [None, 0.01, 0.1])
def test_layer_rank_matches_a_hand_built_layer(kind, d_in, d_out, act, name,
                                               rtol):
    """layer_rank_ratio against torch.linalg.matrix_rank of the same
    layer built from functional ops: conv, BN on the batch, nonlinearity,
    and for a bottleneck the shortcut add."""
    features = _hand_built(kind, d_in, d_out, act, seed=3)
    tol = rtol if rtol is not None else default_rtol(*features.shape)
    expected = int(torch.linalg.matrix_rank(features, rtol=tol))
    ratio = layer_rank_ratio(kind, d_in, d_out, name,
                             torch.Generator().manual_seed(3), rtol=rtol)
    assert ratio * d_out == expected
    # the spectra agree, not just the ranks
    layer = make_layer(kind, d_in, d_out, name)
    assert any(isinstance(m, nn.BatchNorm2d) for m in layer.modules())
    gen = torch.Generator().manual_seed(3)
    hand = torch.linalg.svdvals(features)
    values = _layer_spectrum(kind, d_in, d_out, name, gen)
    torch.testing.assert_close(values, hand, rtol=1e-4,
                               atol=1e-4 * float(hand[0]))


def _layer_spectrum(kind, d_in, d_out, name, gen) -> torch.Tensor:
    from mmchansearch.rank_analysis import _init_normal
    layer = make_layer(kind, d_in, d_out, name).eval()
    _init_normal(layer, gen)
    x = torch.randn(-(-4 * d_out // 64), d_in, 8, 8, generator=gen)
    with torch.no_grad():
        return spectrum(layer(x)).values


def test_bn_and_shortcut_change_what_is_measured():
    """Without BN or without the shortcut the features differ from the
    study's (the hand-built reference would catch either missing)."""
    x = torch.randn(2, 4, 8, 8)
    full = make_layer('ib_dwconv', 4, 16, 'ReLU6').eval()
    assert isinstance(full, ShortcutBlock)
    no_bn = make_layer('ib_dwconv', 4, 16, 'ReLU6', batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in no_bn.modules())
    body = make_layer('ib_dwconv', 4, 16, 'ReLU6', shortcut=False).eval()
    body.load_state_dict(full.body.state_dict())
    with torch.no_grad():
        out, inner = full(x), body(x)
    torch.testing.assert_close(out[:, :4], inner[:, :4] + x)
    torch.testing.assert_close(out[:, 4:], inner[:, 4:])
    # single convs have no shortcut; a narrowing bottleneck cannot add
    assert isinstance(make_layer('conv1x1', 4, 16, 'ReLU'), nn.Sequential)
    with pytest.raises(ValueError, match='d_in <= d_out'):
        make_layer('ib_conv', 16, 8, 'ReLU')


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match='Tanh'):
        layer_rank_ratio('conv1x1', 4, 8, 'Tanh')
    with pytest.raises(ValueError, match='conv5x5'):
        layer_rank_ratio('conv5x5', 4, 8, 'ReLU')


# ------------------------------------------------------------------- tool
def _run_tool(*args) -> subprocess.CompletedProcess:
    return run_tool_process(TOOL, *args, check=False, timeout=300)


def _run_tool_here(capsys, *args) -> tuple[int, str]:
    """Runs the tool in this process (no interpreter start-up); returns
    the exit code and stderr."""
    argv = [str(TOOL), *map(str, args)]
    code = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, 'argv', argv)
        try:
            runpy.run_path(str(TOOL), run_name='__main__')
        except SystemExit as exit_:
            code = exit_.code
    return code, capsys.readouterr().err


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def test_tool_study_writes_csv_and_plot(tmp_path):
    result = _run_tool('--num-layers', 2, '--num-ratios', 3, '--kinds',
                       'conv1x1', 'ib_dwconv', '--activations', 'Identity',
                       'ReLU', 'SiLU', '--d-out', 16, 24, '--out-dir',
                       tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / 'rank_ratio.png').stat().st_size > 0
    rows = _read_csv(tmp_path / 'rank_ratio.csv')
    assert len(rows) == 2 * 3 * 3
    assert {r['ratio'] for r in rows} == {'0.1', '0.55', '1.0'}
    assert {r['kind'] for r in rows} == {'conv1x1', 'ib_dwconv'}
    assert all(r['num_layers'] == '2' for r in rows)


def _write_idx(path: Path, data: np.ndarray) -> None:
    header = struct.pack(f'>{1 + data.ndim}I', 0x0800 | data.ndim,
                         *data.shape)
    path.write_bytes(header + data.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_setup(tmp_path):
    """Fake Fashion-MNIST test files, a ReXNet config, two checkpoints."""
    rng = np.random.default_rng(0)
    data = tmp_path / 'data'
    data.mkdir()
    for prefix in ('train', 't10k'):  # the dataset checks both exist
        _write_idx(data / f'{prefix}-images-idx3-ubyte',
                   rng.integers(0, 255, (12, 28, 28)))
        _write_idx(data / f'{prefix}-labels-idx1-ubyte',
                   np.arange(12) % 10)
    model = dict(type='ImageClassifier',
                 backbone=dict(type='ReXNet', widen_factor=0.25),
                 neck=dict(type='GlobalAveragePooling'),
                 head=dict(type='LinearClsHead', num_classes=10,
                           in_channels=320))
    config = tmp_path / 'tiny_rexnet.py'
    bases = [str(BASE / 'datasets' / 'fashion_mnist_bs64.py'),
             str(BASE / 'default_runtime.py')]
    config.write_text(f'_base_ = {bases!r}\nmodel = {model!r}\n')
    checkpoints = []
    with DefaultScope.overwrite_default_scope('mmchansearch'):
        for seed in (0, 1):
            torch.manual_seed(seed)
            path = tmp_path / f'seed{seed}.pth'
            torch.save({'state_dict': MODELS.build(model).state_dict()},
                       path)
            checkpoints.append(path)
    return config, checkpoints, data


def test_tool_compares_two_models(tiny_setup, tmp_path, capsys):
    config, (ckpt_a, ckpt_b), data = tiny_setup
    out = tmp_path / 'out'
    code, stderr = _run_tool_here(
        capsys, '--model', config, '--checkpoint', ckpt_a, '--model2',
        config, '--checkpoint2', ckpt_b, '--num-images', 10,
        '--num-workers', 0, '--out-dir', out, '--cfg-options',
        f'val_dataloader.dataset.data_root={data}',
        'val_dataloader.batch_size=4')
    assert code == 0, stderr
    for name in ('feature_rank.png', 'cumulative_singular_values.png'):
        assert (out / name).stat().st_size > 0
    rows = _read_csv(out / 'feature_rank.csv')
    assert {r['model'] for r in rows} == {'seed0', 'seed1'}
    first = [r for r in rows if r['model'] == 'seed0']
    assert len(first) == len(rows) // 2 > 40  # every conv of the model
    assert first[0]['layer'] == 'backbone.stem.conv'
    assert first[0]['rows'] == str(10 * 16 * 16)  # 10 images, 16x16
    for row in rows:
        assert 0 < float(row['rank_ratio']) <= 1
        assert int(row['rank']) <= min(int(row['rows']),
                                       int(row['channels']))


def test_tool_reports_a_bad_checkpoint(tiny_setup, tmp_path, capsys):
    config, _, _ = tiny_setup
    code, stderr = _run_tool_here(capsys, '--model', config,
                                  '--checkpoint', tmp_path / 'missing.pth',
                                  '--out-dir', tmp_path)
    assert code == 2
    errors = [line for line in stderr.splitlines()
              if line.startswith('error:')]
    assert len(errors) == 1 and 'missing.pth' in errors[0]


def test_tool_measures_the_nonlinearities(tiny_setup, tmp_path, capsys):
    config, (ckpt, _), data = tiny_setup
    out = tmp_path / 'out'
    code, stderr = _run_tool_here(
        capsys, '--model', config, '--checkpoint', ckpt, '--features',
        'act', '--num-images', 4, '--num-workers', 0, '--out-dir', out,
        '--cfg-options', f'val_dataloader.dataset.data_root={data}')
    assert code == 0, stderr
    rows = _read_csv(out / 'feature_rank.csv')
    assert rows[0]['layer'] == 'backbone.stem.act'
    assert rows[-1]['layer'] == 'backbone.conv_head.act'
