"""What the differentiable searches (DMaskingNAS, DNAS) share.

Both keep one architecture parameter vector per searched decision (a
channel group's widths, a layer's blocks), relax the choice with
Gumbel-softmax at temperature :attr:`tau`, and alternate two steps, each
with its own optimizer: a weight step on the cross-entropy and an
architecture step on the search loss, the cross-entropy combined with a
differentiable cost (FLOPs, params or LUT latency) of the sampled network.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper, OptimWrapperDict

from ...distributed import average_gradients
from ...errors import BudgetError, ConfigError

LOSS_FORMS = ('additive', 'multiplicative')
# the multiplicative loss takes the log of the cost in these units
COST_UNITS = {'flops': 1e6, 'params': 1e6, 'latency': 1.0}


class DifferentiableSearch(ABC):
    """Mixin for an mmengine model with Gumbel-relaxed choices.

    The model sets :attr:`options` (decision -> candidates),
    :attr:`searched` (decisions with several candidates, in the order of
    :attr:`arch_params`), :attr:`arch_params`, :attr:`tau` and the cost
    options (:meth:`init_cost`), and implements
    :meth:`sample_architecture` and :meth:`clear_architecture`.
    """

    arch_params: torch.nn.ParameterList

    def init_cost(self, cost_metric: str, loss_form: str, cost_weight: float,
                  target: float | None, alpha: float, beta: float,
                  widest_cost: float, cheapest_cost: float) -> None:
        """Checks and stores the cost options.

        Args:
            cost_metric: 'flops', 'params' or 'latency'.
            loss_form: 'additive' (CE + cost_weight * cost term) or
                'multiplicative' (CE * alpha * log(cost)^beta, FBNet; the
                cost in millions, latency in ms).
            cost_weight: lambda of the additive form.
            target: budget of ``cost_metric``. The additive cost term is
                then |cost / target - 1|; without it cost / widest_cost.
            alpha: the multiplicative form's factor.
            beta: the multiplicative form's exponent.
            widest_cost: the cost of the most expensive network.
            cheapest_cost: the cost of the cheapest one.

        Raises:
            ConfigError: an unknown metric or loss form, or a
                multiplicative loss on costs below one unit (the log would
                be negative).
            BudgetError: a target below the cheapest network.
        """
        if loss_form not in LOSS_FORMS:
            raise ConfigError(f'loss_form {loss_form!r} is unknown; use one '
                              f'of {LOSS_FORMS}.')
        if cost_metric not in COST_UNITS:
            raise ConfigError(f'cost_metric must be one of '
                              f'{tuple(COST_UNITS)}, got {cost_metric!r}.')
        unit = COST_UNITS[cost_metric]
        if loss_form == 'multiplicative' and cheapest_cost <= unit:
            raise ConfigError(
                f'the multiplicative loss takes log({cost_metric}), which is '
                f'<= 0 for the cheapest network ({cheapest_cost / unit:.3g} '
                f"{'ms' if cost_metric == 'latency' else 'M'}); use "
                "loss_form='additive' (with a target).")
        if target is not None and target < cheapest_cost:
            raise BudgetError(
                f'target {cost_metric} {target:g} is below the cheapest '
                f'network of the search space ({cheapest_cost:g}); raise '
                'the target or add cheaper candidates.')
        self.cost_metric, self.loss_form = cost_metric, loss_form
        self.cost_weight, self.target = cost_weight, target
        self.alpha, self.beta = alpha, beta
        self.widest_cost = widest_cost

    # ------------------------------------------------------ distributions
    def probabilities(self) -> dict[str, list[float]]:
        """softmax(alpha) per searched decision, over its candidates."""
        return {name: F.softmax(a.detach(), -1).tolist()
                for name, a in zip(self.searched, self.arch_params)}

    def gumbel_weights(self) -> list[torch.Tensor]:
        """One Gumbel-softmax draw per searched decision."""
        return [F.gumbel_softmax(a, tau=self.tau) for a in self.arch_params]

    @abstractmethod
    def sample_architecture(self) -> torch.Tensor:
        """Draws relaxed choices, applies them, returns their cost."""

    @abstractmethod
    def clear_architecture(self) -> None:
        """Undoes :meth:`sample_architecture`."""

    def cost_loss(self, ce: torch.Tensor, cost: torch.Tensor
                  ) -> torch.Tensor:
        """The search loss from the cross-entropy and the cost."""
        if self.loss_form == 'multiplicative':
            scaled = cost / COST_UNITS[self.cost_metric]
            return ce * self.alpha * torch.log(scaled) ** self.beta
        term = (cost / self.target - 1).abs() if self.target \
            else cost / self.widest_cost
        return ce + self.cost_weight * term

    # ----------------------------------------------------------- training
    def _step(self, data: dict, wrapper: OptimWrapper, others: OptimWrapper,
              with_cost: bool, name: str) -> dict[str, torch.Tensor]:
        with wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            cost = self.sample_architecture()
            logits = self.architecture(data['inputs'], mode='tensor')
            ce = sum(self.architecture.head._get_loss(
                logits, data['data_samples']).values())
            loss = self.cost_loss(ce, cost) if with_cost else ce
        wrapper.backward(loss)
        average_gradients(self.parameters())
        wrapper.step()
        wrapper.zero_grad()
        others.zero_grad()
        self.clear_architecture()
        return {f'{name}_loss': loss.detach(), f'{name}_ce': ce.detach(),
                f'{name}_{self.cost_metric}':
                torch.as_tensor(cost).detach()
                / COST_UNITS[self.cost_metric]}

    def train_step(self, data: dict, optim_wrapper: OptimWrapperDict
                   ) -> dict[str, torch.Tensor]:
        """A weight step: cross-entropy through sampled choices."""
        weights, arch = self._wrappers(optim_wrapper)
        _, log_vars = self.parse_losses(
            self._step(data, weights, arch, False, 'weights'))
        return log_vars

    def arch_step(self, data: dict, optim_wrapper: OptimWrapperDict
                  ) -> dict[str, torch.Tensor]:
        """An architecture step: the search loss, arch_params updated."""
        weights, arch = self._wrappers(optim_wrapper)
        _, log_vars = self.parse_losses(
            self._step(data, arch, weights, True, 'arch'))
        return log_vars

    def _wrappers(self, optim_wrapper: OptimWrapperDict
                  ) -> tuple[OptimWrapper, OptimWrapper]:
        if not (isinstance(optim_wrapper, OptimWrapperDict) and {
                'architecture', 'arch_params'} <= set(optim_wrapper.keys())):
            raise ConfigError(
                f'{type(self).__name__} needs two optimizers: optim_wrapper '
                '= dict(constructor=\'SeparateOptimWrapperConstructor\', '
                'architecture=dict(optimizer=...), arch_params=dict('
                'optimizer=...)).')
        return optim_wrapper['architecture'], optim_wrapper['arch_params']
