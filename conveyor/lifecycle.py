"""One ``with`` for everything Conveyor starts and must stop (servers, routers, Prometheus)."""

from typing import Self


class Service:
    """Started by ``start()`` (which returns it), stopped by ``stop()``; ``with`` does both,
    and stops it whatever happened inside."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
