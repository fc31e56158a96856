"""The public methods of both clients, each written once.

A public method is written once, on :class:`~kisclient._base.ClientBase`, as a *flow*: a
function whose generator yields what it needs done (a :class:`~kisclient._core.Call` to send, a
:class:`~kisclient._operations.Sleep`, a :class:`~kisclient._operations.Gather` of
sub-operations) and returns the result. Decorating it with :class:`operation` (or
:class:`pages`, for a method that yields every page of a call) makes it a method of both shells:
:class:`~kisclient.KISClient` binds a blocking function, :class:`~kisclient.AsyncKISClient` a
coroutine function (an async generator function for :class:`pages`), each carrying the flow's
name, docstring and signature. The shells only perform the effects (``_bind``, ``_run``).

Type checkers see the shell's own signature: ``KISClient().get_balance()`` is a
:class:`~kisclient.Balance`, ``AsyncKISClient().get_balance()`` a coroutine of one.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

if TYPE_CHECKING:
    from ._async_client import AsyncKISClient
    from ._client import KISClient
    from ._core import Call
    from ._operations import Flow, Response

__all__ = ["operation", "pages"]

P = ParamSpec("P")
T = TypeVar("T")

#: The flow behind a :class:`pages` method: every call it yields is one page the user receives.
PageFlow = Generator["Call", "Response", None]


class _SharedMethod:
    """What :class:`operation` and :class:`pages` share: the flow, its public name and the
    signature the shells' methods show (the flow's, without ``self``)."""

    kind: str

    def __init__(self, flow: Callable[..., Any]) -> None:
        self.flow = flow
        self.__name__ = flow.__name__
        self.__qualname__ = flow.__qualname__
        self.__doc__ = flow.__doc__
        self.__module__ = flow.__module__
        self.__signature__ = inspect.signature(flow)
        parameters = list(self.__signature__.parameters.values())[1:]
        self.bound_signature = self.__signature__.replace(parameters=parameters)

    def __set_name__(self, owner: type, name: str) -> None:
        self.__name__ = name

    def __repr__(self) -> str:
        return f"<{self.kind} {self.__qualname__}>"

    def __call__(self, client: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Called on the class (``KISClient.get_price(kis, code)``), as a function would be."""
        return self._bound(client, type(client))(*args, **kwargs)

    def dress(self, method: Callable[..., Any], owner: type) -> Callable[..., Any]:
        """Give a shell's bound *method* this method's public name, docstring and signature,
        in tracebacks too (its code object is renamed)."""
        qualname = f"{owner.__name__}.{self.__name__}"
        code = method.__code__
        method.__code__ = code.replace(co_name=self.__name__, co_qualname=qualname)
        method.__name__ = self.__name__
        method.__qualname__ = qualname
        method.__doc__ = self.__doc__
        method.__module__ = owner.__module__
        method.__signature__ = self.bound_signature  # type: ignore[attr-defined]
        return method

    def _bound(self, client: Any, owner: type | None) -> Any:
        if client is None:
            return self
        method = client._bind(self)
        # A non-data descriptor: the instance's dict answers every later look-up directly.
        client.__dict__[self.__name__] = method
        return method


class operation(_SharedMethod, Generic[P, T]):
    """Decorator: a public method whose flow returns one result (see the module docstring)."""

    kind = "operation"

    def __init__(self, flow: Callable[Concatenate[Any, P], Flow[T]]) -> None:
        super().__init__(flow)

    @overload
    def __get__(self, client: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(self, client: KISClient, owner: type | None = None) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, client: AsyncKISClient, owner: type | None = None
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, client: Any, owner: type | None = None) -> Any:
        return self._bound(client, owner)


class pages(_SharedMethod, Generic[P]):
    """Decorator: a public method that yields the answer to every call its flow yields."""

    kind = "pages"

    def __init__(self, flow: Callable[Concatenate[Any, P], PageFlow]) -> None:
        super().__init__(flow)

    @overload
    def __get__(self, client: None, owner: type | None = None) -> Self: ...
    @overload
    def __get__(
        self, client: KISClient, owner: type | None = None
    ) -> Callable[P, Iterator[Response]]: ...
    @overload
    def __get__(
        self, client: AsyncKISClient, owner: type | None = None
    ) -> Callable[P, AsyncIterator[Response]]: ...
    def __get__(self, client: Any, owner: type | None = None) -> Any:
        return self._bound(client, owner)
