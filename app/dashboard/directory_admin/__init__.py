"""/dashboard/directory: admins list, search, add, edit and delete directory entries and import
directory files.

Every page is for admins only. Forms are plain POSTs that redirect back with a notice, so nothing
needs JavaScript; deletions ask for confirmation on a page of their own. A change the directory
service refuses (invalid, conflicting) re-renders the page with the error beside its form and the
values typed; it runs in a savepoint, so nothing of it is kept. A bank account number typed into a
form is never shown back: the directory keeps only its kind, last four and a keyed fingerprint.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.dashboard.directory_admin import imports, listing, removal, vendors

router = APIRouter()
router.include_router(listing.router)
router.include_router(vendors.router)
router.include_router(imports.router)
router.include_router(removal.router)

__all__ = ["router"]
