"""FastAPI dependencies shared by the routers: the request's database session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import is_outage
from app.core.errors import ServiceUnavailable


def sessions_of(request: Request) -> sessionmaker[Session]:
    """The app's sessionmaker (built in lifespan)."""
    factory = getattr(request.app.state, "sessions", None)
    if factory is None:
        raise ServiceUnavailable("database not configured")
    return factory


def get_session(request: Request) -> Iterator[Session]:
    """One request, one transaction: committed before the response is sent, rolled back on error.

    A database outage becomes a 503 with Retry-After, so clients (the gateway) retry.
    """
    session = sessions_of(request)()
    try:
        yield session
        session.commit()
    except (DBAPIError, PoolTimeout) as exc:
        session.rollback()
        if is_outage(exc):
            raise ServiceUnavailable("database unavailable, retry later") from None
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_session, scope="function")]
