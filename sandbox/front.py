"""One origin for the emulator and the add-on in a single process: requests under
``/ippay`` go to the add-on, everything else to the Splynx emulator. The same split
nginx makes on a Splynx host (``etc/nginx/sites-available/splynx-ippay.addons``), for fast tests."""


class Front:
    """A WSGI app dispatching by path prefix, as the Splynx host's nginx does."""

    def __init__(self, splynx_app, addon_app=None, prefix="/ippay"):
        self.splynx_app = splynx_app
        self.addon_app = addon_app
        self.prefix = prefix

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if self.addon_app is not None and (path == self.prefix or
                                           path.startswith(self.prefix + "/")):
            return self.addon_app(environ, start_response)
        return self.splynx_app(environ, start_response)
