"""What the differ's routes take: the ``Differ`` and ``Precacher`` its lifespan made."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .differ import Differ
from .precache import Precacher


def get_differ(request: Request) -> Differ:
    differ: Differ = request.state.differ
    return differ


def get_precacher(request: Request) -> Precacher:
    precacher: Precacher = request.state.precacher
    return precacher


DifferDep = Annotated[Differ, Depends(get_differ)]
PrecacherDep = Annotated[Precacher, Depends(get_precacher)]
