"""Directory use cases, the public facade: detection snapshot, playbook lookups, edits, imports.

Provenance is the point of the directory: a ticket shows a contact as known-good only when it was
on file before the email arrived. So a contact or account whose number or address changes is put
on file again (new `created_at`, new `added_by`), and bank numbers are kept only as kind, last four
and a keyed fingerprint.

The code lives in sub-feature modules (`lookups`, `normalise`, `reads`, `edits`, `contact_edits`,
`importing`); this module re-exports their public names so callers import from one place.
"""

from app.directory.contact_edits import (
    add_org_contact,
    add_org_domain,
    add_vendor_account,
    add_vendor_contact,
    delete_org_contact,
    delete_org_domain,
    delete_vendor_account,
    delete_vendor_contact,
    get_org_contact,
    update_org_contact,
    update_vendor_account,
    update_vendor_contact,
)
from app.directory.edits import (
    create_person,
    create_vendor,
    delete_person,
    delete_vendor,
    update_person,
    update_vendor,
    upsert_person,
    upsert_vendor,
)
from app.directory.importing import clear_directory, import_directory, parse_directory_file
from app.directory.lookups import (
    KnownContact,
    find_person,
    find_vendor,
    load_snapshot,
    org_contacts,
    person_contacts,
    vendor_contacts,
)
from app.directory.normalise import (
    DEFAULT_PHONE_REGION,
    MAX_IMPORT_ENTRIES,
    ORG_PURPOSES,
    normalise_domain,
    normalise_email,
    normalise_phone,
)
from app.directory.reads import (
    describe_people,
    describe_vendors,
    get_person,
    get_vendor,
    list_org_contacts,
    list_org_domains,
    list_people,
    list_vendor_accounts,
    list_vendor_contacts,
    list_vendors,
    read_directory,
)

__all__ = [
    "DEFAULT_PHONE_REGION",
    "MAX_IMPORT_ENTRIES",
    "ORG_PURPOSES",
    "KnownContact",
    "add_org_contact",
    "add_org_domain",
    "add_vendor_account",
    "add_vendor_contact",
    "clear_directory",
    "create_person",
    "create_vendor",
    "delete_org_contact",
    "delete_org_domain",
    "delete_person",
    "delete_vendor",
    "delete_vendor_account",
    "delete_vendor_contact",
    "describe_people",
    "describe_vendors",
    "find_person",
    "find_vendor",
    "get_org_contact",
    "get_person",
    "get_vendor",
    "import_directory",
    "list_org_contacts",
    "list_org_domains",
    "list_people",
    "list_vendor_accounts",
    "list_vendor_contacts",
    "list_vendors",
    "load_snapshot",
    "normalise_domain",
    "normalise_email",
    "normalise_phone",
    "org_contacts",
    "parse_directory_file",
    "person_contacts",
    "read_directory",
    "update_org_contact",
    "update_person",
    "update_vendor",
    "update_vendor_account",
    "update_vendor_contact",
    "upsert_person",
    "upsert_vendor",
    "vendor_contacts",
]
