"""FBNetV2's DMaskingNAS: differentiable channel search by weighted masks.

The max-width network runs once; every searchable group's channels are
multiplied, where they are read, by m_g = sum_i w_i L_i, where L_i keeps the
first C_i channels and w = Gumbel-softmax(alpha_g, tau) over the group's
candidate widths. The expected widths sum_i w_i C_i make the analytic
FLOPs/params differentiable in alpha, so one loss trains the architecture:
CE + lambda * cost term, or FBNet's CE * a * log(cost)^b.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

from ...channel_masks import GroupMasks
from ...distributed import average_gradients
from ...errors import BudgetError, ConfigError
from ...mutator import ChannelMutator
from ...registry import MODELS
from .base import ChannelSupernet

LOSS_FORMS = ('additive', 'multiplicative')


@MODELS.register_module()
class DMaskingNAS(ChannelSupernet):
    """Differentiable channel search over one shared max-width network.

    Args:
        architecture: the classifier config or instance.
        mutator: the :class:`ChannelMutator` config or instance; its
            candidates (``width_ratios``, ``divisor``) are the options of
            every group unless ``candidates`` names them.
        candidates: group -> explicit candidate widths (others: the
            mutator's).
        cost_metric: 'flops' or 'params'.
        loss_form: 'additive' (CE + cost_weight * cost term) or
            'multiplicative' (CE * alpha * log(cost in M)^beta, FBNet).
        cost_weight: lambda of the additive form.
        target: budget of ``cost_metric``. The additive cost term is then
            |cost / target - 1| (pulled to the budget from both sides);
            without it, cost / cost of the widest network.
        alpha: the multiplicative form's factor.
        beta: the multiplicative form's exponent.
        tau: initial Gumbel-softmax temperature (the train loop anneals it).
        data_preprocessor: defaults to the architecture's.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 architecture: dict | nn.Module,
                 mutator: dict | ChannelMutator | None = None,
                 candidates: Mapping[str, Sequence[int]] | None = None,
                 cost_metric: str = 'flops',
                 loss_form: str = 'additive',
                 cost_weight: float = 1.0,
                 target: float | None = None,
                 alpha: float = 0.2,
                 beta: float = 0.6,
                 tau: float = 5.0,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(architecture, mutator, data_preprocessor, init_cfg)
        if loss_form not in LOSS_FORMS:
            raise ConfigError(f'loss_form {loss_form!r} is unknown; use one '
                              f'of {LOSS_FORMS}.')
        if cost_metric not in ('flops', 'params'):
            raise ConfigError(f"cost_metric must be 'flops' or 'params', "
                              f'got {cost_metric!r}.')
        self.cost_metric, self.loss_form = cost_metric, loss_form
        self.cost_weight, self.alpha, self.beta = cost_weight, alpha, beta
        self.tau = tau
        self.options = self._options(candidates or {})
        self.searched = [g for g, c in self.options.items() if len(c) > 1]
        self.arch_params = nn.ParameterList(
            nn.Parameter(torch.zeros(len(self.options[g])))
            for g in self.searched)
        for group in self.searched:
            keep = torch.zeros(len(self.options[group]),
                               self.mutator.max_widths[group])
            for i, width in enumerate(self.options[group]):
                keep[i, :width] = 1
            self.register_buffer(_buffer_name(group), keep, persistent=False)
        self.masks = GroupMasks(self.architecture, self.mutator.analysis,
                                self.searched)
        self.widest_cost = self.mutator.estimate(self.mutator.max_widths)[
            cost_metric]
        smallest = self.mutator.estimate(
            {g: c[0] for g, c in self.options.items()})[cost_metric]
        if target is not None and target < smallest:
            raise BudgetError(
                f'target {cost_metric} {target:g} is below the smallest '
                f'configuration ({smallest:g}, every group at its smallest '
                'candidate); raise the target or add smaller candidates.')
        self.target = target

    def _options(self, candidates: Mapping[str, Sequence[int]]
                 ) -> dict[str, list[int]]:
        maxima = self.mutator.max_widths
        unknown = sorted(set(candidates) - set(maxima))
        if unknown:
            raise ConfigError(f'candidates: unknown group(s) {unknown}; '
                              f'valid groups are {list(maxima)}.')
        options = {}
        for group in maxima:
            widths = candidates.get(group)
            if widths is None:
                options[group] = self.mutator.candidates(group)
                continue
            widths = sorted(set(widths))
            if not widths or not all(isinstance(w, int) and 1 <= w <=
                                     maxima[group] for w in widths):
                raise ConfigError(
                    f'candidates of {group}: {list(widths)} must be a '
                    f'non-empty list of widths in [1, {maxima[group]}].')
            divisor = self.mutator.divisors[group]
            if any(w % divisor for w in widths):
                raise ConfigError(f'candidates of {group}: widths must be '
                                  f'multiples of {divisor} (grouped conv).')
            options[group] = widths
        return options

    # ------------------------------------------------------- distributions
    def probabilities(self) -> dict[str, list[float]]:
        """softmax(alpha) per searched group, over its candidates."""
        return {g: F.softmax(a.detach(), -1).tolist()
                for g, a in zip(self.searched, self.arch_params)}

    def derived_choices(self) -> dict[str, int]:
        """The most probable candidate of every group."""
        choices = {g: c[-1] for g, c in self.options.items()}
        for group, alpha in zip(self.searched, self.arch_params):
            choices[group] = self.options[group][int(alpha.argmax())]
        return choices

    def sample_masks(self) -> dict:
        """Draws Gumbel-softmax weights, sets the masks, returns the
        expected width of every group (tensors for the searched ones)."""
        if self.mutator.current_choices() != self.mutator.max_widths:
            self.mutator.set_choices(self.mutator.max_widths)  # after eval
        widths: dict = {g: c[-1] for g, c in self.options.items()}
        for group, alpha in zip(self.searched, self.arch_params):
            weights = F.gumbel_softmax(alpha, tau=self.tau)
            mask = weights @ getattr(self, _buffer_name(group))
            self.masks.masks[group] = mask
            widths[group] = mask.sum()  # = sum_i w_i C_i
        return widths

    def cost(self, widths: Mapping) -> torch.Tensor:
        """The differentiable ``cost_metric`` of expected widths."""
        return self.mutator.estimator.soft_estimate(widths)[
            self.cost_metric]

    def cost_loss(self, ce: torch.Tensor, cost: torch.Tensor
                  ) -> torch.Tensor:
        """The search loss from the cross-entropy and the cost."""
        if self.loss_form == 'multiplicative':
            return ce * self.alpha * torch.log(cost / 1e6) ** self.beta
        term = (cost / self.target - 1).abs() if self.target \
            else cost / self.widest_cost
        return ce + self.cost_weight * term

    # ------------------------------------------------------------ training
    def _step(self, data: dict, wrapper: OptimWrapper, others: OptimWrapper,
              with_cost: bool, name: str) -> dict[str, torch.Tensor]:
        with wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            widths = self.sample_masks()
            logits = self.architecture(data['inputs'], mode='tensor')
            ce = sum(self.architecture.head._get_loss(
                logits, data['data_samples']).values())
            cost = self.cost(widths)
            loss = self.cost_loss(ce, cost) if with_cost else ce
        wrapper.backward(loss)
        average_gradients(self.parameters())
        wrapper.step()
        wrapper.zero_grad()
        others.zero_grad()
        self.masks.clear()
        return {f'{name}_loss': loss.detach(), f'{name}_ce': ce.detach(),
                f'{name}_{self.cost_metric}_M':
                torch.as_tensor(cost).detach() / 1e6}

    def train_step(self, data: dict, optim_wrapper: OptimWrapperDict
                   ) -> dict[str, torch.Tensor]:
        """A weight step: cross-entropy through sampled masks."""
        weights, arch = _wrappers(optim_wrapper)
        _, log_vars = self.parse_losses(
            self._step(data, weights, arch, False, 'weights'))
        return log_vars

    def arch_step(self, data: dict, optim_wrapper: OptimWrapperDict
                  ) -> dict[str, torch.Tensor]:
        """An architecture step: the search loss, alphas updated."""
        weights, arch = _wrappers(optim_wrapper)
        _, log_vars = self.parse_losses(
            self._step(data, arch, weights, True, 'arch'))
        return log_vars

    def eval_subnets(self) -> dict[str, Callable[[], None]]:
        """Validation reports the derived network (sliced, no masks)."""
        def derived() -> None:
            self.masks.clear()
            self.mutator.set_choices(self.derived_choices())
        return {'derived': derived}


def _buffer_name(group: str) -> str:
    return 'keep_' + group.replace('.', '_')


def _wrappers(optim_wrapper: OptimWrapperDict
              ) -> tuple[OptimWrapper, OptimWrapper]:
    if not (isinstance(optim_wrapper, OptimWrapperDict)
            and {'architecture', 'arch_params'} <= set(optim_wrapper.keys())):
        raise ConfigError(
            'DMaskingNAS needs two optimizers: optim_wrapper = dict('
            'architecture=dict(optimizer=...), arch_params=dict('
            'optimizer=...)) with constructor='
            "'DefaultOptimWrapperConstructor' per key.")
    return optim_wrapper['architecture'], optim_wrapper['arch_params']
