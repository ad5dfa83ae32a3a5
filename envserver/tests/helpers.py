"""Assertions shared by the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from drlaas_envserver.client import EnvClient, ServerError
from drlaas_envserver.protocol import read_frame


def expect_error(call: Callable[[], Any], field: str, *fragments: str) -> ServerError:
    """Runs `call`, which must get ERROR with `field` and a message holding every fragment."""
    with pytest.raises(ServerError) as info:
        call()
    error = info.value
    assert error.field == field, f"field {error.field!r} (message: {error.message})"
    for fragment in fragments:
        assert fragment in error.message, f"{fragment!r} not in {error.message!r}"
    return error


def assert_closed(client: EnvClient) -> None:
    """After an ERROR the server closes the connection: the next read sees the end of the stream."""
    assert read_frame(client.sock) is None
