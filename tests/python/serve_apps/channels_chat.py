"""A Django Channels chat (ProtocolTypeRouter, an AsyncJsonWebsocketConsumer joining a group) on
manygil.channels.SharedChannelLayer: a group_send from a consumer in one worker reaches the consumers
in every worker. Each worker interpreter imports this module, so WORKER names the worker."""

import uuid

from django.conf import settings

settings.configure(
    DEBUG=False, SECRET_KEY="test-only", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "channels"],
    CHANNEL_LAYERS={"default": {"BACKEND": "manygil.channels.SharedChannelLayer", "CONFIG": {"name": "chat-test"}}},
    DATABASES={},
)

import django  # noqa: E402

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.generic.websocket import AsyncJsonWebsocketConsumer, JsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

WORKER = uuid.uuid4().hex


def index(request):
    return JsonResponse({"worker": WORKER})


urlpatterns = [path("", index)]


class Chat(AsyncJsonWebsocketConsumer):
    async def connect(self):
        await self.channel_layer.group_add("room", self.channel_name)
        await self.accept()
        await self.send_json({"worker": WORKER})

    async def disconnect(self, code):
        await self.channel_layer.group_discard("room", self.channel_name)

    async def receive_json(self, content):
        await self.channel_layer.group_send("room", {"type": "chat.message", "text": content["text"], "from": WORKER})

    async def chat_message(self, event):
        await self.send_json({"text": event["text"], "from": event["from"]})


class SyncChat(JsonWebsocketConsumer):
    """The same chat as a sync consumer (its handlers run in the worker's executor threads; the layer
    is called through async_to_sync, and so is the ASGI send)."""

    def connect(self):
        async_to_sync(self.channel_layer.group_add)("room", self.channel_name)
        self.accept()
        self.send_json({"worker": WORKER})

    def disconnect(self, code):
        async_to_sync(self.channel_layer.group_discard)("room", self.channel_name)

    def receive_json(self, content):
        async_to_sync(self.channel_layer.group_send)("room", {"type": "chat.message", "text": content["text"],
                                                              "from": WORKER})

    def chat_message(self, event):
        self.send_json({"text": event["text"], "from": event["from"]})


application = ProtocolTypeRouter({
    "http": get_asgi_application(),
    "websocket": URLRouter([path("ws/", Chat.as_asgi()), path("ws/sync/", SyncChat.as_asgi())]),
})
