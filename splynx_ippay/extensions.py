"""The Flask extensions of the add-on, created unbound and initialised by the factory."""

from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
