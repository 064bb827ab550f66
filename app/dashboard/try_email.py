"""/dashboard/try: paste Email JSON or raw MIME, or upload an .eml, and see the verdict."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.core.errors import InvalidInput, ServiceUnavailable
from app.dashboard.auth import CsrfAuth, CurrentAuth
from app.dashboard.trial import MAX_SAMPLE_BYTES, try_email
from app.dashboard.web import dashboard_router, render

router = dashboard_router()


@router.get("/try", name="dashboard-try")
def try_form(request: Request, auth: CurrentAuth) -> Response:
    """The form."""
    return render(request, "try.html", {"nav": "try", "result": None, "pasted": "", "error": ""})


@router.post("/try", max_body_size=2 * MAX_SAMPLE_BYTES + 64 * 1024)
async def try_submit(request: Request, auth: CsrfAuth) -> Response:
    """Classify the pasted or uploaded email (a dry run: nothing is stored)."""
    form = await request.form()  # parsed (and cached) by the CSRF check, within the body limit
    upload = form.get("eml")
    pasted = form.get("email")
    pasted = pasted if isinstance(pasted, str) else ""
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_SAMPLE_BYTES + 1)
        shown = ""
    else:
        raw = pasted.encode("utf-8", errors="replace")
        shown = pasted[:MAX_SAMPLE_BYTES]
    detector = getattr(request.app.state, "detector", None)
    if detector is None:
        raise ServiceUnavailable("the model is not loaded yet")
    cache = getattr(request.app.state, "directory_cache", None)
    directory = await run_in_threadpool(cache.get) if cache is not None else None
    try:
        result = await run_in_threadpool(try_email, detector, raw, directory=directory)
    except InvalidInput as exc:
        return render(
            request,
            "try.html",
            {"nav": "try", "result": None, "pasted": shown, "error": exc.detail},
            status_code=422,
        )
    return render(
        request, "try.html", {"nav": "try", "result": result, "pasted": shown, "error": ""}
    )
