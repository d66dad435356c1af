from pathlib import Path

from setuptools import find_packages, setup

from splynx_ippay import __version__

HERE = Path(__file__).resolve().parent


def stdeb_commands():
    """The stdeb build (``setup.py --command-packages=stdeb.command bdist_deb``, stdeb.cfg)
    makes the same package as ``make deb`` from the project's debian/: stdeb writes
    debian/control, changelog and copyright (stdeb.cfg), and also debian/rules and compat,
    which this puts back as the project has them (its rules carry the systemd units'
    handling; compat 13), before the source package is made again and built. stdeb 0.10
    also writes "Homepage: None" when setup() has no url (setuptools' default is None, not
    the "UNKNOWN" it looks for): that line goes."""
    try:
        from stdeb.command.sdist_dsc import sdist_dsc
    except ImportError:  # stdeb is not installed: nothing to add
        return {}
    import shutil
    import subprocess

    class sdist_dsc_with_project_rules(sdist_dsc):
        def initialize_options(self):
            super().initialize_options()
            self.compat = 13

        def run(self):
            super().run()
            debinfo = self.get_debinfo()
            tree = Path(self.dist_dir) / f"{debinfo.source}-{debinfo.upstream_version}"
            shutil.copy2(HERE / "debian" / "rules", tree / "debian" / "rules")
            (tree / "debian" / "compat").write_text("13\n")
            control = tree / "debian" / "control"
            control.write_text(control.read_text().replace("Homepage: None\n", ""))
            for made in Path(self.dist_dir).glob(f"{debinfo.source}_*"):
                if not made.name.endswith(".orig.tar.gz"):
                    made.unlink()
            subprocess.run(["dpkg-source", "-b", tree.name], cwd=self.dist_dir, check=True)

    return {"sdist_dsc": sdist_dsc_with_project_rules}


setup(
    name="splynx-ippay",
    version=__version__,
    description="IPpay card payments add-on for Splynx",
    # As in debian/control (stdeb writes it into its control file).
    long_description=(
        "Lets the customers of an ISP running Splynx pay their invoices and top up\n"
        "their balance by card through the IPpay gateway, from the Splynx customer\n"
        "portal, and lets the ISP's staff charge every customer with a saved card.\n"
        "\n"
        "The add-on is a Flask application served by gunicorn on a unix socket behind\n"
        "the Splynx host's nginx under /ippay. At installation it registers itself with\n"
        "Splynx (module, settings, entry points, payment method) through the Splynx\n"
        "API; when Splynx cannot be reached the registration completes later."),
    packages=find_packages(exclude=["tests", "tests.*", "sandbox", "sandbox.*", "bench"]),
    include_package_data=True,
    # The catalogues as compiled by `pybabel compile` before the build (docs/portal.md
    # "Languages"); the .po sources stay in the source tree.
    package_data={"splynx_ippay": ["migrations/*.ini", "migrations/*.py", "migrations/*.mako",
                                   "migrations/versions/*.py",
                                   "translations/*/LC_MESSAGES/*.mo"]},
    exclude_package_data={"splynx_ippay": ["translations/*.pot",
                                           "translations/*/LC_MESSAGES/*.po"]},
    python_requires=">=3.9",
    install_requires=[
        "Flask>=2.2",
        "Flask-WTF>=1.1",
        "WTForms>=3.0",
        "SQLAlchemy>=1.4",
        "alembic>=1.8",
        "requests>=2.28",
        "defusedxml>=0.7",
    ],
    entry_points={"console_scripts": ["splynx-ippay = splynx_ippay.cli:main"]},
    cmdclass=stdeb_commands(),
)
