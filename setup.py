from setuptools import find_packages, setup

from splynx_ippay import __version__

setup(
    name="splynx-ippay",
    version=__version__,
    description="IPpay card payments add-on for Splynx",
    packages=find_packages(exclude=["tests", "tests.*", "sandbox", "sandbox.*", "bench"]),
    include_package_data=True,
    package_data={"splynx_ippay": ["migrations/*.ini", "migrations/*.py", "migrations/*.mako",
                                   "migrations/versions/*.py"]},
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
)
