"""Decorators that run every call of a function inside a span of its own:
``polytel.traced`` and the GenAI operations (``@polytel.tool("search")``).
Sync and async functions, generators and async generators (the span covers the
whole iteration and is current only while the generator runs)."""

from __future__ import annotations

import functools
import inspect
from typing import Any, AsyncGenerator, Callable, Generator, Optional, TypeVar, cast

from . import _spans
from ._spans import Span, StatusCode

F = TypeVar("F", bound=Callable[..., Any])


def wrap(func: F, start: Callable[[], Span]) -> F:
    """``func``, each call of which runs in a span that ``start()`` starts."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_call(*args: Any, **kwargs: Any) -> Any:
            with start():
                return await func(*args, **kwargs)

        return cast(F, async_call)
    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        async def async_gen(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            s = start()
            inner = func(*args, **kwargs)
            try:
                sent: Any = None
                thrown: Optional[BaseException] = None
                while True:
                    token = _spans._current.set(s)
                    try:
                        if thrown is not None:
                            e, thrown = thrown, None
                            value = await inner.athrow(e)
                        else:
                            value = await inner.asend(sent)
                    except StopAsyncIteration:
                        return
                    finally:
                        _reset(token)
                    try:
                        sent = yield value
                    except GeneratorExit:
                        await inner.aclose()
                        raise
                    except BaseException as e:
                        thrown = e
            except BaseException as e:
                _fail(s, e)
                raise
            finally:
                s.end()

        return cast(F, async_gen)
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            s = start()
            inner = func(*args, **kwargs)
            try:
                sent: Any = None
                thrown: Optional[BaseException] = None
                while True:
                    token = _spans._current.set(s)
                    try:
                        if thrown is not None:
                            e, thrown = thrown, None
                            value = inner.throw(e)
                        else:
                            value = inner.send(sent)
                    except StopIteration as stop:
                        return stop.value
                    finally:
                        _reset(token)
                    try:
                        sent = yield value
                    except GeneratorExit:
                        inner.close()
                        raise
                    except BaseException as e:
                        thrown = e
            except BaseException as e:
                _fail(s, e)
                raise
            finally:
                s.end()

        return cast(F, gen)

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        with start():
            return func(*args, **kwargs)

    return cast(F, call)


def _reset(token: Any) -> None:
    try:
        _spans._current.reset(token)
    except ValueError:
        _spans._current.set(None)


def _fail(s: Span, e: BaseException) -> None:
    if _spans._is_failure(e):
        s.record_exception(e, escaped=True)
        s.set_status(StatusCode.ERROR, f"{type(e).__qualname__}: {e}")
