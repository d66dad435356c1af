"""One concurrency budget per terminal, shared by every charge worker on every host.

The module setting ``charge_concurrency`` is the number of gateway calls that may be in
flight on one IPpay terminal, whatever the number of workers. Each unit of it is a row of
``gateway_leases`` (``slot`` 0 .. budget-1); a worker holds a row by writing its token and
an expiry with a conditional UPDATE (``WHERE holder IS NULL OR expires_at < now``), so two
workers never hold the same row, on SQLite, MariaDB and PostgreSQL alike. Each worker
aims at a fair share (the budget divided by the live workers, rounded up; never more than
its own ``--concurrency``), renews what it holds at every heartbeat and gives back what is
above its share once the calls using it have ended. A worker that dies stops renewing: its
rows are free again when they expire, and the others take them at their next heartbeat.

The expiry is what makes the budget hold across hosts: a worker starts a gateway call only
while its leases are sure to outlive the call (:class:`.slots.TerminalSlots`), so when a
lease expires nothing of its holder's is in flight on it any more.
"""

import datetime as dt
import logging
import math

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ...db import session_scope
from ...models import ChargeWorker, GatewayLease, utcnow

log = logging.getLogger(__name__)


def terminal_key(terminal):
    """The key of a ``settings.Terminal`` in ``gateway_leases``."""
    return f"{terminal.mode.value}:{terminal.terminal_id}"[:120]


def fair_share(ctx, budget, lease_seconds, cap=None):
    """How many units of ``budget`` one worker aims at: the budget over the live workers
    (a heartbeat within ``lease_seconds``), rounded up, at most ``cap``."""
    with session_scope(ctx.sessions) as session:
        live = session.execute(select(func.count()).select_from(ChargeWorker).where(
            ChargeWorker.heartbeat_at >= utcnow() - dt.timedelta(seconds=lease_seconds))
        ).scalar()
    share = math.ceil(budget / max(1, live))
    return min(share, cap) if cap else share


def _ensure_rows(ctx, key, budget):
    """Rows 0 .. budget-1 for ``key``; two workers adding the same row at once is harmless."""
    with session_scope(ctx.sessions) as session:
        have = set(session.execute(select(GatewayLease.slot).where(
            GatewayLease.terminal_key == key, GatewayLease.slot < budget)).scalars())
    for slot in sorted(set(range(budget)) - have):
        try:
            with session_scope(ctx.sessions) as session:
                session.add(GatewayLease(terminal_key=key, slot=slot))
        except IntegrityError:
            pass  # another worker added it first


def hold(ctx, token, key, *, budget, share, busy, ttl_seconds):
    """Renew ``token``'s leases on terminal ``key``, take free or expired ones up to
    ``share`` and give back those above it (never below ``busy``, the calls still running
    on them; a lowered budget takes effect as they end). Returns how many it holds now."""
    _ensure_rows(ctx, key, budget)
    now = utcnow()
    until = now + dt.timedelta(seconds=ttl_seconds)
    mine_q = and_(GatewayLease.terminal_key == key, GatewayLease.holder == token)
    with session_scope(ctx.sessions) as session:
        mine = sorted(session.execute(select(GatewayLease.slot).where(mine_q)).scalars())
        # Kept: up to the share within the budget; beyond it only while calls run on them
        # (those above a lowered budget go back first).
        within = [slot for slot in mine if slot < budget]
        keep = within[:share]
        if len(keep) < busy:
            keep += (within[share:] + [slot for slot in mine if slot >= budget])[:busy - len(keep)]
        give_back = [slot for slot in mine if slot not in keep]
        if give_back:
            session.execute(update(GatewayLease).where(mine_q, GatewayLease.slot.in_(give_back))
                            .values(holder=None, expires_at=None)
                            .execution_options(synchronize_session=False))
        held = session.execute(update(GatewayLease).where(mine_q).values(expires_at=until)
                               .execution_options(synchronize_session=False)).rowcount \
            if keep else 0
        if held < len(keep):
            log.warning("worker %s lost %s lease(s) on %s while it held them", token,
                        len(keep) - held, key)
        free = or_(GatewayLease.holder.is_(None), GatewayLease.expires_at < now)
        if held < share:
            candidates = session.execute(select(GatewayLease.slot).where(
                GatewayLease.terminal_key == key, GatewayLease.slot < budget, free)
                .order_by(GatewayLease.slot)).scalars().all()
            for slot in candidates:
                if held >= share:
                    break
                # The conditional UPDATE is the decision: of two workers taking the same
                # free row, one changes it.
                held += session.execute(update(GatewayLease).where(
                    GatewayLease.terminal_key == key, GatewayLease.slot == slot, free)
                    .values(holder=token, expires_at=until)
                    .execution_options(synchronize_session=False)).rowcount
    return held


def release(ctx, token):
    """Give back every lease ``token`` holds (a worker stopping cleanly)."""
    with session_scope(ctx.sessions) as session:
        session.execute(update(GatewayLease).where(GatewayLease.holder == token)
                        .values(holder=None, expires_at=None)
                        .execution_options(synchronize_session=False))
