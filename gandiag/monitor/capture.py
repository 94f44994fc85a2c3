"""Per-layer gradient norms of G and D, each read in its own phase of the user's training step.

Reading ``p.grad`` when the user calls ``Monitor.step`` would be wrong for the
most common loop there is. The PyTorch DCGAN tutorial zeroes D's gradients at
the start of an iteration, runs D's backward passes and steps D, then runs G's
backward pass *through D*: by the time the step ends, D's ``.grad`` holds D's
phase plus what G's loss sent through it. So the norms are captured by hooks,
while each phase runs, in one of two ways:

``optimizers`` given (the default path): a step pre-hook on each optimizer
reads the gradients of the network it updates at the moment it updates them
— exactly what the optimizer applies, whatever the loop zeroes or forgets to
zero (after any clipping the loop does before ``step()``). With several critic
iterations per G step, the last one is kept, as gandiag's trainer logs it.

no optimizers: a hook on every parameter sees each backward pass's own
contribution, tagged with autograd's id of that pass. A pass that reaches
G's parameters is G's phase (D's share of it is the leak above, dropped); a
pass that reaches only D's is D's phase. A contribution that arrives while
the parameter's ``.grad`` is empty or zero starts a new accumulation (the loop
zeroed it), so contributions sum exactly as ``.grad`` would within a phase.
This path cannot tell D's phase from G's in a loop that sends D's loss into G
(no ``detach()``): pass the optimizers for such a loop.

Hooks do work only while *armed* (the monitor arms them for the steps it
logs), so an unlogged step costs one flag test per parameter.
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch


def _graph_task_id() -> Optional[int]:
    current = getattr(torch._C, "_current_graph_task_id", None)  # torch >= 2.1; -1 outside a backward pass
    return current() if current is not None else None


def by_role(optimizers, nets: dict) -> dict:
    """{"G": G's optimiser, "D": D's}, whatever order they came in; one updating neither network is left out."""
    found = ((role_of(o, nets), o) for o in optimizers)
    return {role: o for role, o in found if role is not None}


def role_of(optimizer, nets: dict) -> Optional[str]:
    """Which network ("G" or "D") an optimizer updates: the one whose parameters it holds."""
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    for role, net in nets.items():
        if any(id(p) in held for p in net.parameters()):
            return role
    return None


class GradientCapture:
    """``collect()`` → ``{"G": {param: norm}, "D": {param: norm}}`` of the armed step, or None for a net unseen."""

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, optimizers: Iterable = ()):
        self.nets = {"G": G, "D": D}
        self.armed = False
        self._handles = []
        self._norms: dict = {}
        mine = by_role(optimizers, self.nets)
        self.strategy = "optimizer" if {"G", "D"} <= set(mine) else "backward-pass"
        if self.strategy == "optimizer":
            for role in ("G", "D"):
                self._handles.append(mine[role].register_step_pre_hook(self._on_step(role)))
        else:
            if _graph_task_id() is None:
                raise RuntimeError("this torch cannot tag backward passes; pass the optimizers to gandiag.Monitor")
            self._sums = {"G": {}, "D": {}}  # role -> {param name: summed contribution} within the current phase
            self._tasks: dict = {}  # backward-pass id -> {"G": {name: grad}, "D": {name: grad}}
            for role, net in self.nets.items():
                for name, p in net.named_parameters():
                    if p.requires_grad:
                        self._handles.append(p.register_hook(self._on_grad(role, name, p)))

    # -- optimizer path -----------------------------------------------------------------------------------------
    def _on_step(self, role: str):
        def hook(optimizer, args, kwargs):
            if self.armed:
                self._norms[role] = {n: float(p.grad.detach().norm()) for n, p in self.nets[role].named_parameters()
                                     if p.grad is not None}
        return hook

    # -- backward-pass path -------------------------------------------------------------------------------------
    def _on_grad(self, role: str, name: str, param: torch.nn.Parameter):
        def hook(grad):
            if self.armed:
                fresh = param.grad is None or not bool(param.grad.detach().any())
                task = self._tasks.setdefault(_graph_task_id(), {"G": {}, "D": {}, "fresh": set()})
                task[role][name] = grad.detach().clone()
                if fresh:
                    task["fresh"].add((role, name))
            return None
        return hook

    def _settle(self) -> None:
        """Fold the finished backward passes into each phase's sums (a pass is G's when it reached G)."""
        for task in self._tasks.values():
            phase = "G" if task["G"] else "D"
            sums = self._sums[phase]
            for name, grad in task[phase].items():
                if (phase, name) in task["fresh"] or name not in sums:
                    sums[name] = grad
                else:
                    sums[name] = sums[name] + grad
        self._tasks.clear()

    # -- both ---------------------------------------------------------------------------------------------------
    def collect(self) -> dict:
        """The armed step's norms, then cleared; call after the step's last backward pass and optimizer step."""
        if self.strategy == "backward-pass":
            self._settle()
            self._norms = {role: {n: float(g.norm()) for n, g in sums.items()}
                           for role, sums in self._sums.items() if sums}
            self._sums = {"G": {}, "D": {}}
        norms, self._norms = self._norms, {}
        return norms

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
