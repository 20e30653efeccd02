"""Devices: boards and simulated boards running partition images.

- ``manyfold.devices.image``: partition images from a typed spec (``docs/wire.md`` section 3).
- ``manyfold.devices.messages``: the link protocol v1 messages (section 2).
- ``manyfold.devices.link``: :class:`LinkClient`, the host end of a link over any pyserial port.
- ``manyfold.devices.greenhouse``: the greenhouse sensor partition, the reference partition.
- ``manyfold.sim`` (a sibling module): the same device code in the extension, as a board.
"""

from manyfold.devices.link import LinkClient, LinkError, LinkTimeout, NackError, Timers

__all__ = ["LinkClient", "LinkError", "LinkTimeout", "NackError", "Timers"]
