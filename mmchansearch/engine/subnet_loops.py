"""Validation and test loops that evaluate every subnet of an algorithm."""
from __future__ import annotations

from mmengine.model import is_model_wrapper
from mmengine.runner import TestLoop, ValLoop

from ..registry import LOOPS
from .batch_norm import kept_statistics, recalibrate_bn


class _SubnetEvaluation:
    """Runs the loop's dataset once per subnet the algorithm reports.

    With one subnet the metrics keep their usual names; with several, each
    is prefixed with the subnet's name (``max/accuracy/top1``). The BN
    statistics recalibrated for it are put back afterwards: evaluating
    leaves the model as it was.
    """
    phase: str
    calibrate_bn_batches: int

    def run(self) -> dict:
        runner = self.runner
        runner.call_hook(f'before_{self.phase}')
        runner.call_hook(f'before_{self.phase}_epoch')
        algorithm = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        subnets = algorithm.eval_subnets()
        metrics = {}
        for name, activate in subnets.items():
            activate()
            with kept_statistics(algorithm):
                if self.calibrate_bn_batches:
                    recalibrate_bn(algorithm, runner.train_dataloader,
                                   self.calibrate_bn_batches)
                runner.model.eval()
                for idx, data_batch in enumerate(self.dataloader):
                    self.run_iter(idx, data_batch)
            result = self.evaluator.evaluate(len(self.dataloader.dataset))
            prefix = f'{name}/' if len(subnets) > 1 else ''
            metrics.update({prefix + k: v for k, v in result.items()})
        runner.call_hook(f'after_{self.phase}_epoch', metrics=metrics)
        runner.call_hook(f'after_{self.phase}')
        return metrics


@LOOPS.register_module()
class SubnetValLoop(_SubnetEvaluation, ValLoop):
    """ValLoop over every subnet of the algorithm.

    Args:
        calibrate_bn_batches: recalibrate BN statistics on this many
            training batches before evaluating each subnet (0: keep them).
        Others as mmengine's ``ValLoop``.
    """
    phase = 'val'

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False,
                 calibrate_bn_batches: int = 0) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        self.calibrate_bn_batches = calibrate_bn_batches


@LOOPS.register_module()
class SubnetTestLoop(_SubnetEvaluation, TestLoop):
    """TestLoop over every subnet of the algorithm (see SubnetValLoop)."""
    phase = 'test'

    def __init__(self, runner, dataloader, evaluator, fp16: bool = False,
                 calibrate_bn_batches: int = 0) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        self.calibrate_bn_batches = calibrate_bn_batches
