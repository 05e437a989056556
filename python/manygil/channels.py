"""A Django Channels layer shared by every worker of one process: ``manygil.channels.SharedChannelLayer``.

Under ``manygil serve`` the workers are interpreters of one process, so a consumer in one worker can
``group_send`` to consumers held by the others without Redis::

    CHANNEL_LAYERS = {"default": {"BACKEND": "manygil.channels.SharedChannelLayer"}}

Channels' own ``InMemoryChannelLayer`` lives in one interpreter: a broadcast from one worker reaches
only that worker's consumers. ``channels_redis`` reaches every worker, over a socket and msgpack.
Here each channel is a ``manygil.Channel`` found by name in a process-wide ``SharedDict`` (named
``manygil.channels.<name>``), and a receive waits with ``Channel.recv_async`` (an eventfd the
worker's event loop watches: no thread, no poll). Group memberships live in the same store, with
an index from each channel to the groups it joined (so a channel whose message expired leaves its
groups in one lookup).

Options (``CONFIG``), as ``InMemoryChannelLayer``'s: ``expiry`` (60 s: a message older is dropped
unreceived, and its channel leaves its groups), ``group_expiry`` (86400 s), ``capacity`` (100 messages
per channel: a ``send`` beyond raises ``ChannelFull``; a ``group_send`` skips a full channel, as
channels_redis does), ``channel_capacity`` (per-name patterns); and ``name`` ("default"): layers
with the same name share their channels and groups, so give each alias its own. Messages are
copied as a ``manygil.Channel`` copies (native types directly, ``SharedBuffer`` and ``Channel`` by
reference, other objects pickled); what cannot be copied raises a ``TypeError`` naming it, and the
layer stays usable.

Lifetime: a channel stays in the store while a receiver waits on it (the wait renews it every
``expiry`` seconds) and ``2 * expiry`` seconds after; a channel nobody receives on then ends with its
messages, which had expired anyway.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

from . import _core

__all__ = ["SharedChannelLayer"]


class SharedChannelLayer(BaseChannelLayer):
    """A channel layer every interpreter of the process shares (see the module's docstring)."""

    extensions = ["groups", "flush"]

    def __init__(self, expiry: float = 60, group_expiry: float = 86400, capacity: int = 100,
                 channel_capacity: dict[Any, int] | None = None, name: str = "default", **kwargs: Any) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity, **kwargs)
        if not expiry > 0 or not group_expiry > 0:
            raise ValueError(f"expiry and group_expiry must be > 0, not {expiry!r} and {group_expiry!r}")
        self.channel_capacity = self.compile_capacities(channel_capacity or {})
        self.group_expiry = group_expiry
        self.name = name
        self._store = _core.SharedDict.named(f"manygil.channels.{name}")

    # -- channels -------------------------------------------------------------------------------

    def _channel(self, name: str, *, renew: bool) -> _core.Channel:
        """The Channel of that name, created (with its capacity) if absent; renew: a receiver's
        touch, keeping it in the store for another 2 * expiry seconds."""
        key, ttl = ("c", name), 2 * self.expiry
        while True:
            channel = self._store.get(key)
            if channel is not None:
                if renew:
                    self._store.touch(key, ttl)
                return channel
            channel = _core.Channel(maxsize=self.get_capacity(name))
            if self._store.add(key, channel, ttl=ttl):
                return channel
            # another worker created it first: take theirs

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Puts message on channel (ChannelFull beyond its capacity)."""
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        # Never waits for room (send_async): Channels' contract, as InMemoryChannelLayer's and
        # channels_redis's, is ChannelFull at once, which consumers catch to shed load.
        try:
            self._channel(channel, renew=False).send_nowait((time.time() + self.expiry, message))
        except _core.ChannelFull:
            raise ChannelFull(channel) from None

    async def receive(self, channel: str) -> dict[str, Any]:
        """The first message to arrive on channel; with several receivers of one channel (in any
        workers), each message goes to one of them. Cancelling a receive takes no message."""
        self.require_valid_channel_name(channel)
        while True:
            queue = self._channel(channel, renew=True)
            try:
                expires, message = await queue.recv_async(timeout=self.expiry)
            except _core.ChannelEmpty:
                continue  # renew the channel and wait on
            if expires >= time.time():
                return message
            await self._remove_from_groups(channel)  # an expired message: its receiver is gone (as InMemory)

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A new channel name, unique in the process."""
        return f"{prefix}.manygil!{secrets.token_hex(8)}"

    async def flush(self) -> None:
        """Forgets every channel, message and group of this layer's name."""
        self._store.clear()

    async def close(self) -> None:
        pass

    # -- groups ---------------------------------------------------------------------------------

    def _update(self, key: tuple[str, str], change: Any) -> None:
        """Applies change(mapping) -> mapping to the store's dict at key, atomically (compare-and-set:
        concurrent changes from other workers are kept), renewing it for group_expiry seconds."""
        while True:
            current = self._store.get(key)
            updated = change(dict(current or {}))
            if current is None:
                if not updated or self._store.add(key, updated, ttl=self.group_expiry):
                    return
            elif self._store.compare_and_set(key, current, updated, ttl=self.group_expiry):
                return

    # A group is the store's ("g", group): {channel: joined_at}. Its index, ("i", channel): {group:
    # joined_at}, lists the groups a channel joined, so that the channel leaves them all in one lookup
    # when an expired message shows its receiver gone. Each key changes atomically on its own; the
    # index is written before a join and after a leave, so it always holds at least the channel's
    # groups (but for a join and a leave of the same pair racing in two workers: a pair the
    # application itself leaves undecided: the index may then miss the group, and the membership stays
    # until group_expiry, as it does when no message ever expires).

    async def group_add(self, group: str, channel: str) -> None:
        """Adds channel to group (for group_expiry seconds)."""
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        now = time.time()
        self._update(("i", channel), lambda groups: {**groups, group: now})
        self._update(("g", group), lambda members: {**members, channel: now})

    async def group_discard(self, group: str, channel: str) -> None:
        """Removes channel from group, if it is in it."""
        self.require_valid_channel_name(channel)
        self.require_valid_group_name(group)
        self._discard(group, channel)

    def _discard(self, group: str, channel: str) -> None:
        def without(key: str) -> Any:
            def change(mapping: dict[str, float]) -> dict[str, float]:
                mapping.pop(key, None)
                return mapping

            return change

        self._update(("g", group), without(channel))
        self._update(("i", channel), without(group))

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Sends message to every channel of group; a full channel is skipped."""
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        members = self._store.get(("g", group)) or {}
        oldest = time.time() - self.group_expiry
        item = (time.time() + self.expiry, message)
        for channel, joined in members.items():
            if joined < oldest:
                continue
            try:
                self._channel(channel, renew=False).send_nowait(item)
            except _core.ChannelFull:
                pass

    async def _remove_from_groups(self, channel: str) -> None:
        """Takes channel out of every group it joined: one lookup of its index, not a scan of the store."""
        for group in list(self._store.get(("i", channel)) or {}):
            self._discard(group, channel)
