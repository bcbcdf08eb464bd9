"""What the differ's routes take: the ``Differ`` and ``Precacher`` its lifespan made."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from janitor_common.deps import from_state

from .differ import Differ
from .precache import Precacher

DifferDep = Annotated[Differ, Depends(from_state("differ"))]
PrecacherDep = Annotated[Precacher, Depends(from_state("precacher"))]
