"""Shared fixtures: tiny models, the classifiers of the issue, config files.

Every model here is small enough for a 2-core CI machine: the mmpretrain
classifiers have 10 classes and are traced at 3x32x32.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from torch import nn

from mmchansearch.coverage import conv_linear_flops, randomize_batch_norms
from mmchansearch.models.algorithms import ChannelSupernet
from mmchansearch.mutator import ChannelMutator
from mmchansearch.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
INPUT_SHAPE = (3, 32, 32)
NUM_CLASSES = 10


def _classifier(backbone: dict, in_channels: int,
                mid_channels: list[int] | None = None) -> dict:
    if mid_channels is None:
        head = dict(type='LinearClsHead', num_classes=NUM_CLASSES,
                    in_channels=in_channels)
    else:
        head = dict(type='StackedLinearClsHead', num_classes=NUM_CLASSES,
                    in_channels=in_channels, mid_channels=mid_channels,
                    dropout_rate=0.2, act_cfg=dict(type='HSwish'))
    return dict(type='ImageClassifier', backbone=backbone,
                neck=dict(type='GlobalAveragePooling'), head=head)


# ResNet-18 with the CIFAR stem at a quarter width (16..128 channels): the
# Network Adjustment model, 35.0M FLOPs at 32x32.
QUARTER_RESNET18_CIFAR = _classifier(
    dict(type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16),
    128)

CLASSIFIER_CFGS = {
    'resnet18': _classifier(dict(type='ResNet', depth=18), 512),
    'resnet50': _classifier(dict(type='ResNet', depth=50), 2048),
    'resnet18_cifar': _classifier(dict(type='ResNet_CIFAR', depth=18), 512),
    'mobilenet_v2': _classifier(dict(type='MobileNetV2'), 1280),
    'mobilenet_v3_small': _classifier(
        dict(type='MobileNetV3', arch='small'), 576, [1024]),
    'mobilenet_v3_large': _classifier(
        dict(type='MobileNetV3', arch='large'), 960, [1280]),
}


def _build_classifier(name: str, seed: int = 0) -> nn.Module:
    """An mmpretrain classifier of CLASSIFIER_CFGS, BN randomized, eval."""
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(CLASSIFIER_CFGS[name]))
    randomize_batch_norms(model, seed)
    return model.eval()


def _make_supernet(model: nn.Module, memory_format: str = 'channels_last',
                   **mutator_kwargs) -> ChannelSupernet:
    """Wraps ``model`` (an mmpretrain classifier) in a supernet, eval mode."""
    mutator_kwargs.setdefault('input_shape', INPUT_SHAPE)
    supernet = ChannelSupernet(model, ChannelMutator(**mutator_kwargs),
                               memory_format=memory_format)
    return supernet.eval()


def exported_grads(mutator: ChannelMutator) -> dict[str, torch.Tensor]:
    """The supernet's parameter gradients, exported like its weights."""
    params = list(mutator.model.parameters())
    saved = [p.data for p in params]
    try:
        for p in params:
            p.data = p.grad
        return {name: p.detach().clone() for name, p in
                mutator.export_static().named_parameters()}
    finally:
        for p, data in zip(params, saved):
            p.data = data


def assert_export_matches_supernet(mutator: ChannelMutator, static: nn.Module,
                                   x: torch.Tensor) -> None:
    """At the mutator's current choices, ``static`` (its export) computes
    the supernet's outputs, input gradients and parameter gradients (the
    supernet's sliced as the export slices its weights), in eval and in
    train mode; leaves the supernet in eval mode."""
    model = mutator.model
    for mode in ('eval', 'train'):
        model.train(mode == 'train')
        static.train(mode == 'train')
        model.zero_grad()
        static.zero_grad()
        x_super = x.clone().requires_grad_()
        x_static = x.clone().requires_grad_()
        out, ref = model(x_super), static(x_static)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        weights = torch.randn_like(ref)
        (out * weights).sum().backward()
        (ref * weights).sum().backward()
        torch.testing.assert_close(x_super.grad, x_static.grad,
                                   atol=1e-5, rtol=1e-5)
        grads = exported_grads(mutator)
        for name, param in static.named_parameters():
            torch.testing.assert_close(grads[name], param.grad,
                                       atol=1e-5, rtol=1e-5)
    model.eval()


# ------------------------------------------------------------ tiny models
class TinyNet(nn.Module):
    """A stem, a residual block, an inverted residual with SE, an MLP head.

    Expected groups: ``stem`` (stem and res_conv2, joined by the residual
    sum), ``res_conv1``, ``expand`` (expand and se_expand, joined by the SE
    product; the depthwise conv follows it), ``se_reduce``, ``project`` and
    ``fc1``. ``fc2`` feeds the output, so its channels stay fixed.
    """

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.res_conv1 = nn.Conv2d(16, 12, 3, padding=1, bias=False)
        self.res_bn1 = nn.BatchNorm2d(12)
        self.res_conv2 = nn.Conv2d(12, 16, 3, padding=1, bias=False)
        self.res_bn2 = nn.BatchNorm2d(16)
        self.expand = nn.Conv2d(16, 32, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(32)
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.dw_bn = nn.BatchNorm2d(32)
        self.se_reduce = nn.Conv2d(32, 8, 1)
        self.se_expand = nn.Conv2d(8, 32, 1)
        self.project = nn.Conv2d(32, 24, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(24)
        self.fc1 = nn.Linear(24, 20)
        self.fc_bn = nn.BatchNorm1d(20)
        self.fc2 = nn.Linear(20, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem(x)))
        y = F.relu(self.res_bn1(self.res_conv1(x)))
        x = F.relu(x + self.res_bn2(self.res_conv2(y)))
        y = F.relu(self.expand_bn(self.expand(x)))
        y = F.relu(self.dw_bn(self.dw(y)))
        scale = F.relu(self.se_reduce(y.mean((2, 3), keepdim=True)))
        y = y * torch.sigmoid(self.se_expand(scale))
        x = self.project_bn(self.project(y)).mean((2, 3))
        return self.fc2(F.relu(self.fc_bn(self.fc1(x))))


class SharedLayerNet(nn.Module):
    """Calls ``mid`` twice: on ``pre``'s output, then on its own output.

    Whatever a correct analysis does with ``mid``, the ``stem`` group (read
    only by ``pre``) stays searchable.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.pre = nn.Conv2d(8, 8, 3, padding=1)
        self.mid = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.pre(F.relu(self.stem(x))))
        x = F.relu(self.mid(x))
        x = F.relu(self.mid(x))
        return self.fc(x.mean((2, 3)))


# --------------------------------------------------------------- fixtures
@pytest.fixture(scope='session', autouse=True)
def single_thread_torch():
    """Runs torch on one thread.

    The models here are tiny, so intra-op threads only add synchronization;
    on a busy 2-core machine they oversubscribe the cores and made the
    suite ~10x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def quarter_resnet_cfg() -> dict:
    """ResNet-18-CIFAR at 0.25x width (see QUARTER_RESNET18_CIFAR)."""
    return copy.deepcopy(QUARTER_RESNET18_CIFAR)


@pytest.fixture(scope='session')
def randomize_bn() -> Callable[..., None]:
    """``randomize_bn(model, seed=0)``: non-trivial batch-norm state."""
    return randomize_batch_norms


@pytest.fixture
def classifier_cfg() -> Callable[[str], dict]:
    """``classifier_cfg(name)``: a copy of a classifier's model config."""
    return lambda name: copy.deepcopy(CLASSIFIER_CFGS[name])


@pytest.fixture
def make_classifier() -> Callable[..., nn.Module]:
    """``make_classifier(name, seed=0)``: a classifier of the issue."""
    return _build_classifier


@pytest.fixture
def make_supernet() -> Callable[..., ChannelSupernet]:
    """``make_supernet(classifier, memory_format='channels_last',
    **mutator_kwargs)``, at 3x32x32."""
    return _make_supernet


@pytest.fixture
def test_logger() -> logging.Logger:
    """A plain logger that propagates to pytest's ``caplog``."""
    return logging.getLogger('mmchansearch.tests')


@pytest.fixture
def warnings():
    """The deprecation warnings the current MMLogger logs (other warnings,
    e.g. mmengine's about a default scope an earlier test set, are not
    this test's)."""
    logger = MMLogger.get_current_instance()
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    handler.addFilter(lambda record: 'is deprecated' in record.getMessage())
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.fixture
def count_flops() -> Callable[[nn.Module, torch.Tensor], int]:
    """``count_flops(model, inputs)``: fvcore's conv + linear count."""
    return conv_linear_flops


@pytest.fixture
def tiny_net() -> TinyNet:
    """TinyNet with randomized batch norms, in eval mode."""
    torch.manual_seed(0)
    model = TinyNet()
    randomize_batch_norms(model)
    return model.eval()


@pytest.fixture
def tiny_mutator(tiny_net: TinyNet) -> ChannelMutator:
    """A mutator prepared on ``tiny_net``."""
    mutator = ChannelMutator(input_shape=(3, 16, 16))
    mutator.prepare(tiny_net)
    return mutator


@pytest.fixture
def shared_layer_net() -> SharedLayerNet:
    torch.manual_seed(0)
    return SharedLayerNet().eval()


@pytest.fixture(scope='module', params=sorted(CLASSIFIER_CFGS))
def classifier_name(request) -> str:
    """Each classifier of the issue, by name (see CLASSIFIER_CFGS)."""
    return request.param


@pytest.fixture(scope='module')
def classifier_supernet(classifier_name: str) -> ChannelSupernet:
    """A supernet of ``classifier_name``, shared by one test module.

    The mutator has divisor 1 and 1/32 width steps, so sampled widths are
    arbitrary integers, not multiples of 8. Tests set every group's width
    before using it, so sharing it across tests leaks no state.
    """
    return _make_supernet(_build_classifier(classifier_name),
                          width_ratios=[i / 32 for i in range(1, 33)],
                          divisor=1)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Writes a config file holding ``model = <model_cfg>``; returns it."""

    def write(model_cfg: dict, name: str = 'model_cfg.py') -> Path:
        path = tmp_path / name
        path.write_text(f'model = {model_cfg!r}\n', encoding='utf-8')
        return path

    return write


# ------------------------------------------------- data and tools/ scripts
def _write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x0800 + array.ndim  # unsigned bytes
    header = struct.pack('>I', magic) + b''.join(
        struct.pack('>I', d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _make_fashion_mnist(root: Path, num_train: int, num_test: int) -> Path:
    """Fashion-MNIST-format files whose images show their label as a
    bright band (learnable in a few steps)."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for prefix, count in (('train', num_train), ('t10k', num_test)):
        labels = rng.integers(0, 10, count)
        images = rng.integers(0, 60, (count, 28, 28))
        for i, label in enumerate(labels):
            images[i, label * 2:label * 2 + 6, :] += 180
        _write_idx(root / f'{prefix}-images-idx3-ubyte', images)
        _write_idx(root / f'{prefix}-labels-idx1-ubyte', labels)
    return root


@pytest.fixture(scope='session')
def make_fashion_mnist() -> Callable[[Path, int, int], Path]:
    """Writes tiny Fashion-MNIST-format data: (root, num_train, num_test)."""
    return _make_fashion_mnist


def _differentiable_search_options(root: Path, epochs: int) -> list[str]:
    """``--cfg-options`` shrinking a differentiable search config
    (schedule ``_base_/schedules/differentiable_search.py``) to the tiny
    data under ``root``.

    The weights train on training images [0, 48) and the architecture on
    [48, 96), 16 a batch, for ``epochs`` epochs; every loader runs in the
    process. The validation data differs between configs: callers set it.
    """
    return [
        f'train_dataloader.dataset.dataset.data_root={root}',
        'train_dataloader.dataset.stop=48', 'train_dataloader.batch_size=16',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        f'train_cfg.arch_dataloader.dataset.dataset.data_root={root}',
        'train_cfg.arch_dataloader.dataset.start=48',
        'train_cfg.arch_dataloader.dataset.stop=96',
        'train_cfg.arch_dataloader.batch_size=16',
        'train_cfg.arch_dataloader.num_workers=0',
        'train_cfg.arch_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        f'max_epochs={epochs}', f'train_cfg.max_epochs={epochs}',
        f'param_scheduler.architecture.end={epochs}',
    ]


@pytest.fixture(scope='session')
def differentiable_search_options() -> Callable[[Path, int], list[str]]:
    """``differentiable_search_options(root, epochs)``: ``--cfg-options``
    running a DMaskingNAS or DNAS search config on
    :func:`make_fashion_mnist` data."""
    return _differentiable_search_options


def _rexnet_search_options(root: Path, num_train: int, num_heldout: int,
                           **search_loop: float) -> list[str]:
    """``--cfg-options`` shrinking a ReXNet channel search on Fashion-MNIST
    (``configs/rexnet/rexnet_search*_fashion-mnist.py``) to the tiny data
    under ``root``.

    Six one-block stages; candidates train on training images
    [0, num_train), 16 a batch, for one epoch and are ranked on the next
    ``num_heldout``; two candidates of one seed; every loader runs in the
    process. ``search_loop`` sets the loop's other keys, the limits for
    the network at hand (``max_flops=1.5e6`` ...).
    """
    return [
        'model.backbone.stage_blocks=[1,1,1,1,1,1]',
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'train_dataloader.dataset.stop={num_train}',
        'train_dataloader.batch_size=16', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        f'val_dataloader.dataset.dataset.data_root={root}',
        f'val_dataloader.dataset.start={num_train}',
        f'val_dataloader.dataset.stop={num_train + num_heldout}',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False',
        'max_epochs=1', 'train_cfg.max_epochs=1', 'param_scheduler.end=1',
        'search_loop.num_candidates=2', 'search_loop.seeds=1',
        *(f'search_loop.{key}={value}' for key, value in search_loop.items()),
    ]


@pytest.fixture(scope='session')
def rexnet_search_options() -> Callable[..., list[str]]:
    """``rexnet_search_options(root, num_train, num_heldout, **limits)``:
    ``--cfg-options`` running a ReXNet search config on
    :func:`make_fashion_mnist` data."""
    return _rexnet_search_options


def _tool_env() -> dict[str, str]:
    # The tools must import this checkout's package, whatever is installed.
    path = os.pathsep.join(filter(None, [str(REPO),
                                         os.environ.get('PYTHONPATH')]))
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=path)


class _ToolServer:
    """A client of ``tests/tool_server.py``: runs ``python SCRIPT ARGS`` in
    a fork of one process that imported the heavy libraries once (see
    there). Started at the first tool run; ``MMCHANSEARCH_TEST_FORK=0``
    runs plain subprocesses instead."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, str(REPO / 'tests' / 'tool_server.py')],
                cwd=REPO, env=_tool_env(), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                bufsize=1)
        return self.process

    def _reply(self, process: subprocess.Popen,
               deadline: float | None) -> dict:
        while True:
            wait = None if deadline is None else max(0, deadline - time.time())
            ready, _, _ = select.select([process.stdout], [], [], wait)
            if not ready:
                raise TimeoutError
            line = process.stdout.readline()
            if not line:
                raise RuntimeError('the tool server ended')
            return json.loads(line)

    def run(self, args: list[str], env: dict[str, str],
            timeout: float | None) -> subprocess.CompletedProcess:
        process = self._start()
        with tempfile.TemporaryDirectory() as tmp:
            out, err = os.path.join(tmp, 'out'), os.path.join(tmp, 'err')
            process.stdin.write(json.dumps(dict(
                args=args, cwd=str(REPO), env=env, stdout=out,
                stderr=err)) + '\n')
            process.stdin.flush()
            deadline = None if timeout is None else time.time() + timeout
            pid = self._reply(process, deadline)['pid']
            try:
                code = self._reply(process, deadline)['returncode']
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                self._reply(process, None)
                raise subprocess.TimeoutExpired([sys.executable, *args],
                                                timeout) from None
            read = lambda path: Path(path).read_text(errors='replace')  # noqa: E731
            return subprocess.CompletedProcess([sys.executable, *args], code,
                                               read(out), read(err))

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait()


_TOOL_SERVER = _ToolServer()


@pytest.fixture(scope='session', autouse=True)
def _close_tool_server():
    yield
    _TOOL_SERVER.close()


def run_tool_process(*args, check: bool = True,
                     timeout: float | None = None
                     ) -> subprocess.CompletedProcess:
    """Runs ``python <script> args...`` in the repo (through the tool
    server unless ``MMCHANSEARCH_TEST_FORK=0``); ``check=False`` keeps a
    failing result instead of raising."""
    env = _tool_env()
    command = [str(a) for a in args]
    if os.environ.get('MMCHANSEARCH_TEST_FORK', '1') != '0':
        result = _TOOL_SERVER.run(command, env, timeout)
    else:
        result = subprocess.run([sys.executable, *command], cwd=REPO,
                                env=env, capture_output=True, text=True,
                                timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f'{args[0]} failed:\n{result.stderr[-3000:]}')
    return result


@pytest.fixture(scope='session')
def run_tool() -> Callable[..., subprocess.CompletedProcess]:
    """Runs ``python <script> args...`` in the repo; ``check=False`` keeps
    a failing result instead of raising."""
    return run_tool_process


def _kill_when(ready: Callable[[], bool], *args,
               timeout: float = 300) -> None:
    """Runs ``python <script> args...`` in a plain subprocess (as
    :func:`run_tool_process` would without the server) and kills it with
    SIGKILL (``kill -9``: no handler runs, nothing is flushed) as soon as
    ``ready()`` is true; fails if the tool ended first."""
    process = subprocess.Popen([sys.executable, *map(str, args)], cwd=REPO,
                               env=_tool_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and process.poll() is None:
            if ready():
                break
            time.sleep(0.05)
        assert process.poll() is None, \
            f'{args[0]} ended (status {process.returncode}) before the kill'
        assert ready(), f'{args[0]} did not get there in {timeout} s'
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()


def _final_state(work_dir: Path) -> dict:
    pointer = (Path(work_dir) / 'last_checkpoint').read_text().strip()
    return torch.load(pointer, weights_only=False)['state_dict']


@pytest.fixture(scope='session')
def final_state() -> Callable[[Path], dict]:
    """``final_state(work_dir)``: the state dict of the checkpoint a
    training run's ``last_checkpoint`` points to (to compare a resumed run
    with an uninterrupted one)."""
    return _final_state


@pytest.fixture(scope='session')
def kill_when() -> Callable[..., None]:
    """``kill_when(ready, script, args...)``: runs a tool, ``kill -9`` once
    ``ready()`` (e.g. a checkpoint file exists); fails if it ended first."""
    return _kill_when


@pytest.fixture(scope='session')
def run_torchrun(run_tool) -> Callable[..., subprocess.CompletedProcess]:
    """Runs ``torchrun --nproc_per_node=N script args...`` on a free port
    (CPU processes use gloo, see ``mmchansearch.cli``)."""

    def launch(nproc: int, script, *args, **kwargs):
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        return run_tool('-m', 'torch.distributed.run',
                        f'--nproc_per_node={nproc}', f'--master_port={port}',
                        script, '--launcher', 'pytorch', *args, **kwargs)

    return launch
