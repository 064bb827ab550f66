"""Importing a directory file (CSV, JSON or YAML) and showing what it added."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import File, Query, Request, UploadFile
from fastapi.responses import Response

from app.core.deps import DbSession
from app.core.errors import AppError
from app.dashboard.auth import AdminAuth
from app.dashboard.directory_admin.common import (
    BASE,
    IMPORT_EXTENSIONS,
    IMPORT_KINDS,
    MAX_IMPORT_BYTES,
    NOTICES,
    AdminCsrf,
    attempt,
    changed,
    fingerprint_key,
)
from app.dashboard.web import dashboard_router, redirect, render
from app.directory import service

router = dashboard_router()


def _import_limit(request: Request) -> int:
    settings = getattr(request.app.state, "settings", None)
    configured = getattr(settings, "max_body_bytes", MAX_IMPORT_BYTES)
    return min(MAX_IMPORT_BYTES, int(configured))


def _counts_param(raw: str) -> list[int] | None:
    parts = raw.split(",")
    if len(parts) != len(IMPORT_KINDS) or not all(p.isdigit() and len(p) <= 9 for p in parts):
        return None
    return [int(p) for p in parts]


def _import_page(
    request: Request,
    *,
    error: str = "",
    result: list[tuple[str, int, int]] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "directory_import.html",
        {
            "nav": "directory",
            "error": error,
            "result": result,
            "limit_mb": _import_limit(request) / (1024 * 1024),
            "notice": NOTICES["imported"] if result is not None else "",
        },
        status_code=status_code,
    )


@router.get("/directory/import", name="dashboard-directory-import")
def import_form(
    request: Request,
    auth: AdminAuth,
    read: Annotated[str, Query(max_length=200)] = "",
    added: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The upload form; after an import, what was read and what was new, per kind."""
    counts_read, counts_added = _counts_param(read), _counts_param(added)
    result = None
    if counts_read is not None and counts_added is not None:
        result = [
            (label, n, a)
            for label, n, a in zip(IMPORT_KINDS.values(), counts_read, counts_added, strict=True)
        ]
    return _import_page(request, result=result)


@router.post("/directory/import", max_body_size=MAX_IMPORT_BYTES + 64 * 1024)
def import_file(
    request: Request,
    session: DbSession,
    auth: AdminCsrf,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Add or update entries from a CSV, JSON or YAML file (nothing is removed)."""
    limit = _import_limit(request)
    if file is None or not file.filename:
        return _import_page(request, error="Choose a file to import.", status_code=422)
    if not file.filename.lower().endswith(IMPORT_EXTENSIONS):
        return _import_page(
            request, error="The file must be .csv, .json, .yaml or .yml.", status_code=415
        )
    content = file.file.read(limit + 1)
    if len(content) > limit:
        return _import_page(
            request,
            error=f"The file is larger than {limit // 1024:,} KB: split it into smaller files.",
            status_code=413,
        )
    name = file.filename

    def run() -> dict[str, Any]:
        data = service.parse_directory_file(name, content)
        return service.import_directory(
            session, data, key=fingerprint_key(request), actor=auth.user.actor
        )

    result = attempt(session, run)
    if isinstance(result, AppError):
        return _import_page(request, error=result.detail, status_code=result.status_code)
    changed(request, session)
    read = ",".join(str(int(result.get(k, 0))) for k in IMPORT_KINDS)
    added = ",".join(str(int(result.get("added", {}).get(k, 0))) for k in IMPORT_KINDS)
    return redirect(f"{BASE}/import?read={read}&added={added}")
