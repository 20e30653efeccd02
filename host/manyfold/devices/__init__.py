"""Devices: boards and simulated boards running partition images.

- ``manyfold.devices.image``: partition images from a typed spec (``docs/wire.md`` section 3).
- ``manyfold.devices.protocol``: the link protocol's typed objects and codes (section 2), from
  the Rust core.
- ``manyfold.devices.link``: :class:`LinkClient`, the host end of a link over any pyserial port
  (the protocol runs in Rust: ``manyfold-core``'s host role).
- ``manyfold.devices.greenhouse``: the greenhouse sensor partition, the reference partition.
- ``manyfold.devices.lower``: a manifest partition lowered to a partition image.
- ``manyfold.devices.bridge``: :class:`DeviceBridge`, a host graph and a device joined by a link.
- ``manyfold.devices.boards``: board descriptors (``boards/<board>/board.toml``).
- ``manyfold.devices.flash``: ``flash`` a partition to an emulated board or through PlatformIO
  (``manyfold.devices.platformio``).
- ``manyfold.devices.qemu``: build the firmware and boot an emulated board (``start_board``).
- ``manyfold.devices.footprint``: the firmware's flash and RAM with the greenhouse partition.
- ``manyfold.devices.ports``: open a link on a URL and handshake (``open_board``), list the serial
  ports and ``probe`` what answers on each.
- ``manyfold.devices.queries``: ask a connected device one query; typed answers of
  ``manyfold.query.device``.
- ``manyfold.sim`` (a sibling module): the same device code in the extension, as a board.
"""

from manyfold.devices.link import LinkClient, LinkError, LinkTimeout, NackError, Timers

__all__ = ["LinkClient", "LinkError", "LinkTimeout", "NackError", "Timers"]
