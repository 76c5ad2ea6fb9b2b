"""The sandbox's services, discovered from the modules in this package.

To add one (an orders database, a demo log directory, a Kubernetes emulator), add a module here that defines a
:class:`sandbox.service.Service` subclass. It is started in ``order`` (servers before the seeders that use them) and
its Connections are used unless the user configured real ones.
"""

from __future__ import annotations

import importlib
import pkgutil

from sandbox.service import Service


def discover() -> list[type[Service]]:
    """Every Service subclass defined in this package's modules, in start order."""
    found: dict[str, type[Service]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Service) and value is not Service:
                if value.__module__ == module.__name__:
                    found[value.name] = value
    return sorted(found.values(), key=lambda service: (service.order, service.name))
