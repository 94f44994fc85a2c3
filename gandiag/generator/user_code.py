"""Importing the user's own generator code: ``--generator-class module:Class``, ``--generator-path``.

Only with ``--trust-checkpoint`` (importing runs code). A class is looked up,
in order, in the installed packages, then in each ``--generator-path``
folder, then in the current folder: appended after site-packages, so a file
that happens to sit in the folder where gandiag runs can never shadow an
installed package. The folders are on ``sys.path`` only while the import
(or a pickle's unpickling) runs. ``--generator-kwargs`` gives the
constructor's keyword arguments.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Iterable, Optional

from ..errors import CheckpointError, GandiagError


@contextlib.contextmanager
def importable(paths: Iterable[str], include_cwd: bool = True):
    """``paths`` (then the current folder) appended to ``sys.path`` for the duration of the block."""
    added = []
    for p in [*(os.path.abspath(p) for p in paths), *([os.getcwd()] if include_cwd else [])]:
        if p not in sys.path:
            sys.path.append(p)
            added.append(p)
    try:
        yield
    finally:
        for p in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(p)


def check_paths(paths: Iterable[str]) -> None:
    from ..safety.files import is_folder

    for p in paths:
        if not is_folder(p):
            raise GandiagError(f"--generator-path {p}: no such folder")


def import_module_of(spec: str, paths: Iterable[str]):
    """(module, class name) of ``module:Class``; every failure is one line saying what to do."""
    mod_name, sep, cls_name = spec.partition(":")
    if not sep or not mod_name or not cls_name:
        raise GandiagError(f"--generator-class {spec!r}: expected module:Class, e.g. mynets:Generator")
    paths = tuple(paths)
    check_paths(paths)
    with importable(paths):
        try:
            return importlib.import_module(mod_name), cls_name
        except ImportError as exc:
            where = ", ".join([*paths, "the current folder"])
            raise GandiagError(f"--generator-class {spec}: cannot import {mod_name!r} ({exc}); gandiag looked in "
                               f"the installed packages and {where}: pass --generator-path DIR for the folder "
                               "holding it") from None
        except Exception as exc:  # the user's module failed while importing
            raise GandiagError(f"--generator-class {spec}: importing {mod_name!r} failed: "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None


def build_class(spec: str, kwargs: Optional[dict], paths: Iterable[str], trusted: bool):
    """An instance of ``module:Class`` built with ``kwargs``; every failure is one line saying what to do."""
    if not trusted:
        raise CheckpointError(f"--generator-class {spec} imports and runs Python code; pass --trust-checkpoint "
                              "if you trust it")
    module, cls_name = import_module_of(spec, paths)
    cls = getattr(module, cls_name, None)
    if cls is None or not callable(cls):
        raise GandiagError(f"--generator-class {spec}: {module.__name__!r} has no class {cls_name!r}")
    try:
        return cls(**(kwargs or {}))
    except TypeError as exc:
        raise GandiagError(f"--generator-class {spec} cannot be built with --generator-kwargs {kwargs or {}}: "
                           f"{exc}; pass the constructor's arguments as JSON, e.g. --generator-kwargs "
                           "'{\"nz\": 100}'") from None
    except Exception as exc:
        raise GandiagError(f"--generator-class {spec}: its constructor failed: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:200]}") from None


def pickle_finding_main_in(module):
    """A ``pickle_module`` for ``torch.load`` that finds ``__main__`` classes in ``module``.

    ``torch.save(netG)`` in a notebook or a training script pickles the class
    as ``__main__.Generator``, which no later process can import. Given
    ``--generator-class train_dcgan:Generator``, such a pickle is read with
    the classes of that module instead.
    """
    import pickle
    import types

    class Unpickler(pickle.Unpickler):
        def find_class(self, mod, name):
            return super().find_class(module.__name__ if mod == "__main__" else mod, name)

    return types.SimpleNamespace(Unpickler=Unpickler, load=pickle.load, loads=pickle.loads, __name__="pickle")
