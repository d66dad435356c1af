"""The charge worker's gateway slots (services/charge_runs/slots.py): places in line
between an attempt's sent mark and its call, and the calls themselves."""

import threading
import time

import pytest

from splynx_ippay.services.charge_runs.slots import NoSlot, TerminalSlots

TERMINAL = ("test", "TESTTERMINAL")


def granted(size):
    slots = TerminalSlots(call_seconds=1.0)
    slots.grant(TERMINAL, size, time.monotonic() + 60)
    return slots


def placed_in_thread(slots, entered, leave, call=False):
    """A thread that takes a place (and, with ``call``, its slot) and keeps it until
    ``leave`` is set."""
    def run():
        with slots.place(TERMINAL) as place:
            if call:
                with place.call():
                    entered.release()
                    leave.wait(10)
            else:
                entered.release()
                leave.wait(10)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_no_more_threads_stand_in_line_than_the_terminal_has_slots():
    slots = granted(2)
    entered, leave = threading.Semaphore(0), threading.Event()
    threads = [placed_in_thread(slots, entered, leave) for _ in range(3)]
    assert entered.acquire(timeout=5) and entered.acquire(timeout=5)
    # The third waits while two stand in line...
    assert not entered.acquire(timeout=0.3)
    leave.set()
    # ...and has its place once one of them has left it.
    assert entered.acquire(timeout=5)
    for thread in threads:
        thread.join()


def test_a_place_is_given_up_when_its_call_has_its_slot():
    slots = granted(1)
    entered, leave = threading.Semaphore(0), threading.Event()
    calling = placed_in_thread(slots, entered, leave, call=True)
    assert entered.acquire(timeout=5)
    assert slots.busy(TERMINAL) == 1
    # The call holds the only slot, not the only place: the next one lines up behind it
    # and waits for the slot alone.
    with slots.place(TERMINAL) as place:
        with pytest.raises(NoSlot):
            with place.call(deadline=time.monotonic() + 0.2):
                raise AssertionError("the block must not run without a slot")
        leave.set()
        with place.call(deadline=time.monotonic() + 5):
            assert slots.busy(TERMINAL) == 1
    calling.join()
    assert slots.busy(TERMINAL) == 0 and slots.peak == 1


def test_a_call_waits_no_longer_than_its_deadline():
    slots = granted(1)
    with slots.turn(TERMINAL):
        with slots.place(TERMINAL) as place:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                with place.call(deadline=started + 0.3):
                    pass
            assert 0.3 <= time.monotonic() - started < 2
    # Nothing stays taken: the place and the slot are free again.
    with slots.place(TERMINAL) as place, place.call(deadline=time.monotonic() + 1):
        assert slots.busy(TERMINAL) == 1
    assert slots.busy(TERMINAL) == 0


def test_leases_granted_later_open_the_line_and_the_slots():
    slots = TerminalSlots(call_seconds=1.0)
    entered, leave = threading.Semaphore(0), threading.Event()
    calling = placed_in_thread(slots, entered, leave, call=True)
    assert not entered.acquire(timeout=0.3)  # no lease on the terminal yet
    slots.grant(TERMINAL, 1, time.monotonic() + 60)
    assert entered.acquire(timeout=5)
    leave.set()
    calling.join()
