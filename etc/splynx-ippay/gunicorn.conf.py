# gunicorn settings of the splynx-ippay web service (splynx-ippay.service runs
# `gunicorn --config /etc/splynx-ippay/gunicorn.conf.py splynx_ippay.wsgi:app`).
# The Splynx host's nginx forwards /ippay/ to this socket (/etc/splynx-ippay/nginx-location.conf).

bind = "unix:/run/splynx-ippay/web.sock"
# Applied only while the socket is created: srw-rw----, owned by the service's user and its
# group www-data (the unit's Group=), so nginx (www-data) can connect and no one else can.
umask = 0o117

# Processes x threads. Most of a payment's time is spent waiting for IPpay and Splynx, so
# threads are cheap; processes add memory (about 60 MB each).
workers = 2
threads = 8

# A payment may wait up to [ippay] read_timeout (45 s) for the gateway, then settle by ENQ.
timeout = 120
graceful_timeout = 60

# Logs go to stderr, which systemd sends to the journal: journalctl -u splynx-ippay
accesslog = "-"
errorlog = "-"
loglevel = "info"
