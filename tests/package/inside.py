"""Run inside the package tests' container with its own python3 (``python3 inside.py
COMMAND ARGS``): the customer's browser and the admin's hands, as seen from that host.
Each command prints one line of JSON."""

import json
import sqlite3
import sys
import time

import requests

from debpkg import Splynx, pay_an_invoice, point_at_simulator, snapshot

FRONT = "http://127.0.0.1"  # the Splynx host's nginx
SPLYNX = Splynx("http://127.0.0.1:8081")


def wait(url, timeout="30"):
    deadline = time.monotonic() + float(timeout)
    while True:
        try:
            requests.get(url, timeout=2)
            return {"ok": True}
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def get(url):
    answer = requests.get(url, timeout=10, allow_redirects=False)
    return {"status": answer.status_code, "body": answer.text[:2000],
            "server": answer.headers.get("Server", "")}


def pay(login="alice"):
    return {"invoice": pay_an_invoice(FRONT, SPLYNX, login)}


def burst(count="100"):
    """``count`` POSTs to the card form from one client address, 16 at a time, through
    nginx; then GETs."""
    from concurrent.futures import ThreadPoolExecutor

    def post(_):
        return requests.post(f"{FRONT}/ippay/cards", data={"holder_name": "x"},
                             timeout=10).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(post, range(int(count))))
    seconds = time.monotonic() - started
    gets = [requests.get(f"{FRONT}/ippay/static/ippay.css", timeout=10).status_code
            for _ in range(30)]
    return {"posts": statuses, "seconds": seconds, "gets": gets}


def state():
    return SPLYNX.state()


def registered():
    return {"registered": SPLYNX.module_registered()}


def simulator(url):
    point_at_simulator(url)
    return {"ok": True}


def revision(database):
    with sqlite3.connect(database) as db:
        return {"revision": db.execute("select version_num from alembic_version").fetchone()[0]}


def add_sentinel_card(database):
    """A saved card in the previous version's database, to find again after the upgrade."""
    db = sqlite3.connect(database)
    columns = db.execute("pragma table_info(cards)").fetchall()
    values = {"customer_id": 3, "token": "UPGRADESENTINEL", "brand": "visa", "last4": "4242",
              "holder_name": "Upgrade Sentinel", "exp_month": 12, "exp_year": 2030,
              "is_default": 0, "created_at": "2026-01-01 00:00:00"}
    for _cid, name, kind, notnull, default, primary in columns:
        if name not in values and notnull and default is None and not primary:
            values[name] = 0 if any(t in kind.upper() for t in ("INT", "BOOL", "NUM")) else ""
    names = [c[1] for c in columns if c[1] in values]
    db.execute(f"insert into cards ({', '.join(names)}) values ({', '.join('?' for _ in names)})",
               [values[n] for n in names])
    db.commit()
    db.close()
    return {"ok": True}


def find_sentinel_card(database):
    with sqlite3.connect(database) as db:
        row = db.execute("select holder_name from cards where token = 'UPGRADESENTINEL'"
                         ).fetchone()
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
    return {"holder_name": row[0] if row else None, "tables": tables}


def files():
    return sorted(snapshot())


COMMANDS = {"wait": wait, "get": get, "pay": pay, "burst": burst, "state": state,
            "registered": registered, "simulator": simulator, "revision": revision,
            "add-sentinel-card": add_sentinel_card, "find-sentinel-card": find_sentinel_card,
            "snapshot": files}

if __name__ == "__main__":
    print(json.dumps(COMMANDS[sys.argv[1]](*sys.argv[2:])))
