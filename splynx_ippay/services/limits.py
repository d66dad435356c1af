"""Card-testing defences: how often a card typed in may reach the gateway.

Someone holding a list of stolen card numbers uses a payment page to learn which work: each
try is a TOKENIZE, AUTHONLY or SALE that the merchant pays for and that can get the terminal
closed. Every try of a card typed in (to save it, or to pay with it) is first written to the
``card_trials`` table and counted against the limits below, in the database that every web
worker and every host share, so no process can let more through than the limits allow:

* per customer: at most N new cards a day, and at most M declined (or still unanswered)
  tries a day;
* per direct pay link (a document, no login): after K declined or unanswered tries, the link
  pauses for a while;
* per client address: at most P tries an hour, whoever the requests claim to be;
* a cap on the cards a customer may keep.

A try counts only the tries recorded before it (lower ids), so two simultaneous tries can
not both take the last place. A refused try is kept (``blocked``) and listed for staff; the
customer is told when to try again. The numbers are module settings (settings.CardLimits).
"""

import datetime as dt
import hashlib
import logging
import math

from sqlalchemy import func, select, update

from ..db import session_scope
from ..messages import Plural, UserError
from ..models import Card, CardTrial, TrialOutcome as T, utcnow

log = logging.getLogger(__name__)

DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
#: Tries that did not end in an approval: declined, or not answered yet.
_UNAPPROVED = (T.ALLOWED, T.DECLINED)
_COUNTED = (T.ALLOWED, T.APPROVED, T.DECLINED, T.ERROR)


class TryLater(UserError):
    """A limit refused the try before the gateway heard of it; ``retry_at`` says when."""

    def __init__(self, retry_at, now):
        minutes = max(1, math.ceil((retry_at - now).total_seconds() / 60))
        if minutes >= 90:
            hours = max(2, round(minutes / 60))
            super().__init__(Plural("For your security, no more cards can be tried here right "
                                    "now. Please try again in about {count} hour.",
                                    "For your security, no more cards can be tried here right "
                                    "now. Please try again in about {count} hours.", hours))
        else:
            super().__init__(Plural("For your security, no more cards can be tried here right "
                                    "now. Please try again in {count} minute.",
                                    "For your security, no more cards can be tried here right "
                                    "now. Please try again in {count} minutes.", minutes))
        self.retry_at = retry_at


class TooManyCards(UserError):
    """The customer already keeps as many cards as allowed."""


def client_key(ctx, address):
    """What is kept of a client's address: a keyed hash (enough to count, nothing to read)."""
    if not address:
        return None
    return hashlib.sha256(ctx.secret + b" client " + address.encode()).hexdigest()[:40]


def _count(session, trial, *conditions):
    return session.execute(select(func.count(), func.min(CardTrial.at), func.max(CardTrial.at))
                           .where(CardTrial.id < trial.id, *conditions)).one()


def _verdict(session, trial, limits, now):
    """``(reason, retry_at)`` of the first limit ``trial`` breaks, or None."""
    if trial.customer_id is not None:
        count, oldest, _ = _count(session, trial, CardTrial.customer_id == trial.customer_id,
                                  CardTrial.at > now - DAY, CardTrial.outcome.in_(_COUNTED))
        if count >= limits.new_cards_per_customer_day:
            return (f"{count} new cards tried by customer {trial.customer_id} in 24 h "
                    f"(limit {limits.new_cards_per_customer_day})", oldest + DAY)
        count, oldest, _ = _count(session, trial, CardTrial.customer_id == trial.customer_id,
                                  CardTrial.at > now - DAY, CardTrial.outcome.in_(_UNAPPROVED))
        if count >= limits.declines_per_customer_day:
            return (f"{count} declined or unanswered cards of customer {trial.customer_id} "
                    f"in 24 h (limit {limits.declines_per_customer_day})", oldest + DAY)
    if trial.link_key is not None:
        pause = dt.timedelta(minutes=limits.link_pause_minutes)
        count, _, newest = _count(session, trial, CardTrial.link_key == trial.link_key,
                                  CardTrial.at > now - pause, CardTrial.outcome.in_(_UNAPPROVED))
        if count >= limits.link_declines:
            return (f"{count} declined or unanswered cards on the pay link of "
                    f"{trial.link_key} (limit {limits.link_declines}); paused", newest + pause)
    if trial.client_key is not None:
        count, oldest, _ = _count(session, trial, CardTrial.client_key == trial.client_key,
                                  CardTrial.at > now - HOUR, CardTrial.outcome.in_(_COUNTED))
        if count >= limits.tries_per_address_hour:
            return (f"{count} new cards tried from one address in an hour "
                    f"(limit {limits.tries_per_address_hour})", oldest + HOUR)
    return None


def admit(ctx, limits, *, purpose, customer_id, client_address, last4, link_key=None):
    """Record one try of a card typed in and let it through, or refuse it.

    Returns the trial's id (to be settled with :func:`settle`). Raises :class:`TryLater`
    when a limit is reached; the refused try stays recorded as ``blocked``.
    """
    now = utcnow()
    with session_scope(ctx.sessions) as session:
        trial = CardTrial(at=now, customer_id=customer_id, link_key=link_key,
                          client_key=client_key(ctx, client_address), purpose=purpose,
                          outcome=T.ALLOWED, card_last4=last4)
        session.add(trial)
    # Committed first, then judged against the tries before it: a simultaneous try in
    # another process sees this one, and this one sees every earlier one.
    with session_scope(ctx.sessions) as session:
        verdict = _verdict(session, trial, limits, now)
        if verdict is not None:
            session.execute(update(CardTrial).where(CardTrial.id == trial.id).values(
                outcome=T.BLOCKED, reason=verdict[0][:255]))
    if verdict is not None:
        log.warning("card try %s refused (%s): %s", trial.id, purpose, verdict[0])
        raise TryLater(verdict[1], now)
    return trial.id


def settle(ctx, trial_id, outcome, transaction_id=None):
    """Record what the gateway said to an admitted try (approved, declined or error)."""
    values = {"outcome": T(outcome)}
    if transaction_id:
        values["transaction_id"] = transaction_id
    with session_scope(ctx.sessions) as session:
        session.execute(update(CardTrial).where(CardTrial.id == trial_id).values(**values))


def check_card_cap(ctx, limits, customer_id):
    """Refuse to keep one more card when the customer keeps as many as allowed."""
    with session_scope(ctx.sessions) as session:
        count = session.execute(select(func.count()).select_from(Card)
                                .where(Card.customer_id == customer_id)).scalar()
    if count >= limits.max_saved_cards:
        raise TooManyCards(Plural("You already keep {count} card, the most allowed. Remove it "
                                  "before adding another.",
                                  "You already keep {count} cards, the most allowed. Remove one "
                                  "before adding another.", count))


def blocked(ctx, since=None, limit=200):
    """Refused tries, newest first (the staff page)."""
    since = since or utcnow() - 7 * DAY
    with session_scope(ctx.sessions) as session:
        return session.execute(select(CardTrial).where(CardTrial.outcome == T.BLOCKED,
                                                       CardTrial.at >= since)
                               .order_by(CardTrial.id.desc()).limit(limit)).scalars().all()
