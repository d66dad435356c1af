"""The staff audit trail: who did what, recorded with the Splynx administrator's id."""

import json
import logging

from sqlalchemy import select

from ..db import session_scope
from ..models import StaffAction

log = logging.getLogger(__name__)


def record(ctx, admin_id, action, target=None, **detail):
    """Write one staff action (``settings_saved``, ``run_started``, ``refund`` …)."""
    with session_scope(ctx.sessions) as session:
        session.add(StaffAction(admin_id=admin_id, action=action[:32],
                                target=None if target is None else str(target)[:64],
                                detail=json.dumps(detail, default=str, sort_keys=True)))
    log.info("admin %s: %s %s %s", admin_id, action, target or "", detail or "")


def recent(ctx, limit=100):
    """The newest staff actions first."""
    with session_scope(ctx.sessions) as session:
        return session.execute(select(StaffAction).order_by(StaffAction.id.desc()).limit(limit)
                               ).scalars().all()
