"""What the differ's routes take: the ``Differ`` and ``Precacher`` its lifespan made.

The functions are ``async`` although they do not wait for anything: FastAPI
runs a plain function dependency in its thread pool, a thread hop per
request that halved the warm requests a second (bench/differ.py, 2026-11-29).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .differ import Differ
from .precache import Precacher


async def get_differ(request: Request) -> Differ:
    differ: Differ = request.state.differ
    return differ


async def get_precacher(request: Request) -> Precacher:
    precacher: Precacher = request.state.precacher
    return precacher


DifferDep = Annotated[Differ, Depends(get_differ)]
PrecacherDep = Annotated[Precacher, Depends(get_precacher)]
