"""The process's configured pipeline, shared by every module of the package."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ._pipeline import Pipeline

#: Set by ``polytel.configure``; None until then (and after ``shutdown``).
pipeline: Optional[Pipeline] = None
