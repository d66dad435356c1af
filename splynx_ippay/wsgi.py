"""The WSGI entry point gunicorn serves: ``splynx_ippay.wsgi:app``."""

from . import create_app

app = create_app()
