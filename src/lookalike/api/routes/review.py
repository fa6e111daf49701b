"""Review routes: resolve duplicate groups, undo a run, remember files as not duplicates (the page's review).

The routes that change the library are POSTs with a JSON body; ``guards.ChangeGuard`` (given this router's paths by
the app) refuses the ones that come without the change header or from another origin's page. Each calls the same
workspace method as the CLI command of the same name.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from lookalike.api.deps import ServiceDep, change_header
from lookalike.api.schemas import (
    Decision,
    DecisionsResponse,
    DistinctRequest,
    DistinctResponse,
    ForgetRequest,
    ForgetResponse,
    ResolveRequest,
    ResolveResponse,
    RunResult,
    UndoRequest,
)

router = APIRouter(prefix="/api", tags=["review"])
changes = [Depends(change_header)]  # declared in the OpenAPI document; ChangeGuard enforces it


@router.post("/resolve", dependencies=changes, response_model=ResolveResponse)
def resolve(service: ServiceDep, body: ResolveRequest) -> ResolveResponse:
    """Plan which file of each verified duplicate group to keep (``lookalike resolve``); with ``apply`` move the
    others (journaled: ``/api/undo`` with the run puts them back). With ``choices`` only the chosen files are acted
    on. Answers 400 for an unknown rule, action or choice, 409 while another process writes to the library."""
    return ResolveResponse.of(service.resolve(body.keep, body.apply, body.action, body.choices))


@router.post("/undo", dependencies=changes, response_model=RunResult)
def undo(service: ServiceDep, body: UndoRequest) -> RunResult:
    """Put back every file a run moved, byte-identical, and into the catalog (``lookalike undo``); 400 when there
    is no such run or nothing to undo."""
    return RunResult.of(service.undo(body.run))


@router.post("/distinct", dependencies=changes, response_model=DistinctResponse)
def distinct(service: ServiceDep, body: DistinctRequest) -> DistinctResponse:
    """Remember that these files are not duplicates of one another (``lookalike distinct``): duplicate groups and
    resolve keep them apart. 404 when a path is not an indexed file."""
    added, ids = service.distinct(body.paths)
    return DistinctResponse(added=added, decisions=ids)


@router.post("/decisions/forget", dependencies=changes, response_model=ForgetResponse)
def forget(service: ServiceDep, body: ForgetRequest) -> ForgetResponse:
    """Forget remembered decisions by id (``lookalike decisions forget``): the files may be grouped again."""
    return ForgetResponse(forgotten=service.forget_decisions(body.ids))


@router.get("/decisions", response_model=DecisionsResponse)
def decisions(service: ServiceDep) -> DecisionsResponse:
    """The remembered "not duplicates" pairs, with their ids (``lookalike decisions list``)."""
    return DecisionsResponse(decisions=[Decision(id=d.id, a=d.path_a, b=d.path_b) for d in service.decisions()])
