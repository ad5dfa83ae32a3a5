"""Building the environments that HELLO names, with errors that say which field to fix.

A requester types these names into a task spec; when one is wrong, the trainer shows the ERROR's field
and message to them, so each failure names the field (`environment.gymnasium`, `environment.class`,
`environment.pettingzoo`, `environment.kwargs`) and, for a missing package, the package.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import gymnasium

from .protocol import ProtocolError

WAYS = ("gymnasium", "class", "pettingzoo")


@dataclass
class Built:
    """`num_envs` copies of one environment: Gymnasium environments, or PettingZoo parallel ones."""

    multi_agent: bool
    envs: list[Any]
    # What the requester named, for messages ("CartPole-v1", "mypkg.envs:Maze").
    name: str


def _exception_text(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


def _missing_module(e: ModuleNotFoundError, what: str) -> str:
    if e.name is None:
        # Re-raised without a name (gymnasium.make's "module:ID" import does): its text is all there is.
        return f"{what} needs a module that is not installed: {e}"
    return f"{what} needs the module {e.name!r}, which is not installed (install the package that provides it)"


def close_all(envs: list[Any]) -> None:
    """Closes every environment, ignoring their errors: used when a connection ends, however it ends."""
    for env in envs:
        # A failing close must not hide why the connection ended.
        with contextlib.suppress(Exception):
            env.close()


def parse(environment: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """Checks HELLO's `environment`: returns the way (`gymnasium`, `class`, `pettingzoo`), target and kwargs."""
    unknown = sorted(k for k in environment if k not in (*WAYS, "kwargs"))
    if unknown:
        raise ProtocolError("environment", f"unknown key(s) {unknown}: expected one of {list(WAYS)} and kwargs")
    given = [way for way in WAYS if way in environment]
    if len(given) != 1:
        raise ProtocolError(
            "environment",
            f"names the environment in {len(given)} ways ({given}); exactly one of {list(WAYS)} is needed",
        )
    way = given[0]
    target = environment[way]
    if not isinstance(target, str) or not target:
        raise ProtocolError(f"environment.{way}", f"{target!r} is not a non-empty string")
    kwargs = environment.get("kwargs")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise ProtocolError("environment.kwargs", f"{kwargs!r} is not a JSON object")
    return way, target, kwargs


def build(environment: dict[str, Any], num_envs: int) -> Built:
    """Builds `num_envs` copies of the environment HELLO names (each its own instance, stepped apart)."""
    way, target, kwargs = parse(environment)
    make = {"gymnasium": make_gymnasium, "class": make_class, "pettingzoo": make_pettingzoo}[way]
    envs: list[Any] = []
    try:
        for _ in range(num_envs):
            envs.append(make(target, kwargs))
    except BaseException:
        close_all(envs)
        raise
    return Built(multi_agent=way == "pettingzoo", envs=envs, name=target)


def make_gymnasium(env_id: str, kwargs: dict[str, Any]) -> gymnasium.Env:
    field = "environment.gymnasium"
    try:
        return gymnasium.make(env_id, **kwargs)
    except gymnasium.error.DependencyNotInstalled as e:
        raise ProtocolError(field, f"{env_id} needs a package that is not installed: {e}") from None
    except gymnasium.error.UnregisteredEnv as e:
        # Gymnasium's message already suggests close ids ("Did you mean: `CartPole`?").
        raise ProtocolError(field, f"unknown environment id {env_id!r}: {e}") from None
    except gymnasium.error.Error as e:
        raise ProtocolError(field, f"{env_id}: {e}") from None
    except ModuleNotFoundError as e:
        raise ProtocolError(field, _missing_module(e, env_id)) from None
    except TypeError as e:
        raise ProtocolError("environment.kwargs", f"{env_id} does not take these keyword arguments: {e}") from None
    except Exception as e:
        raise ProtocolError(field, f"making {env_id} raised {_exception_text(e)}") from None


def resolve(target: str, field: str) -> Any:
    """The object `module:attr` names; the part after `:` may be a dotted path (`pkg.mod:sub.factory`)."""
    module_name, sep, path = target.partition(":")
    if not sep or not module_name or not path:
        raise ProtocolError(field, f"{target!r} is not 'module:name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise ProtocolError(
                field, f"no module named {e.name!r} (is the package that provides it installed?)"
            ) from None
        raise ProtocolError(field, _missing_module(e, f"module {module_name!r}")) from None
    except Exception as e:
        raise ProtocolError(field, f"importing {module_name!r} raised {_exception_text(e)}") from None
    parts = path.split(".")
    for i, part in enumerate(parts):
        where = module_name if i == 0 else f"{module_name}:{'.'.join(parts[:i])}"
        try:
            obj = getattr(obj, part)
        except ModuleNotFoundError as e:
            # A package's lazy __getattr__ imports the submodule (pettingzoo.butterfly does).
            raise ProtocolError(field, _missing_module(e, f"{where}.{part}")) from None
        except AttributeError:
            if not isinstance(obj, ModuleType):
                raise ProtocolError(field, f"{where} has no attribute {part!r}") from None
            # A submodule that its package does not import (pettingzoo.mpe:simple_spread_v3.parallel_env).
            submodule = f"{obj.__name__}.{part}"
            try:
                obj = importlib.import_module(submodule)
            except ModuleNotFoundError as e:
                if e.name == submodule:
                    raise ProtocolError(field, f"module {where!r} has no attribute {part!r}") from None
                raise ProtocolError(field, _missing_module(e, f"module {submodule!r}")) from None
            except Exception as e:
                raise ProtocolError(field, f"importing {submodule} raised {_exception_text(e)}") from None
        except Exception as e:
            raise ProtocolError(field, f"{where}.{part} raised {_exception_text(e)}") from None
    return obj


def _construct(factory: Any, target: str, kwargs: dict[str, Any], field: str) -> Any:
    if not callable(factory):
        raise ProtocolError(field, f"{target} is a {type(factory).__name__}, not a class or function")
    try:
        return factory(**kwargs)
    except TypeError as e:
        raise ProtocolError("environment.kwargs", f"{target} does not take these keyword arguments: {e}") from None
    except ModuleNotFoundError as e:
        raise ProtocolError(field, _missing_module(e, target)) from None
    except Exception as e:
        raise ProtocolError(field, f"{target}(...) raised {_exception_text(e)}") from None


def make_class(target: str, kwargs: dict[str, Any]) -> gymnasium.Env:
    """A requester's own `gymnasium.Env` subclass (or a function that returns such an environment)."""
    field = "environment.class"
    cls = resolve(target, field)
    if isinstance(cls, type) and not issubclass(cls, gymnasium.Env):
        raise ProtocolError(field, f"{target} is not a subclass of gymnasium.Env")
    env = _construct(cls, target, kwargs, field)
    if not isinstance(env, gymnasium.Env):
        raise ProtocolError(field, f"{target}(...) returned a {type(env).__name__}, not a gymnasium.Env")
    return env


def _is_aec(env: Any) -> bool:
    try:
        from pettingzoo.utils.env import AECEnv
    except ImportError:
        return hasattr(env, "agent_selection")
    return isinstance(env, AECEnv)


def make_pettingzoo(target: str, kwargs: dict[str, Any]) -> Any:
    """A PettingZoo parallel environment from its factory (`pettingzoo.mpe:simple_spread_v3.parallel_env`)."""
    field = "environment.pettingzoo"
    factory = resolve(target, field)
    env = _construct(factory, target, kwargs, field)
    if _is_aec(env):
        raise ProtocolError(
            field, f"{target}(...) returned an AEC environment; name the parallel one (its parallel_env factory)"
        )
    # Duck-typed: the parallel API is what is used, whether or not the class derives from ParallelEnv.
    missing = [
        name
        for name in ("possible_agents", "observation_space", "action_space", "reset", "step")
        if not hasattr(env, name)
    ]
    if missing:
        raise ProtocolError(
            field,
            f"{target}(...) returned a {type(env).__name__}, not a PettingZoo parallel environment (no {missing})",
        )
    return env
