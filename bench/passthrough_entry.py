"""A Python worker that does nothing but pass the request to the origin: the floor a Python
Worker pays (entry, the SDK's request and response wrappers, one fetch). bench/edge_vs_js.mjs."""

import js
from workers import Response, WorkerEntrypoint


class Default(WorkerEntrypoint):  # type: ignore[misc]
    async def fetch(self, request):  # type: ignore[no-untyped-def]
        raw = request.js_object
        url = js.URL.new(raw.url)
        origin = str(self.env.ORIGIN_URL) + str(url.pathname) + str(url.search)
        return Response(await js.fetch(origin, raw))
