"""Worker entry for the current Python Workers runtime (production): a WorkerEntrypoint."""

from workers import Response, WorkerEntrypoint

from edge.interop import on_queue, serve


class Default(WorkerEntrypoint):  # type: ignore[misc]
    async def fetch(self, request):  # type: ignore[no-untyped-def]
        # an exception nothing caught (edge.interop already fails open) serves the origin's page
        self.ctx.passThroughOnException()
        return Response(await serve(request, self.env, self.ctx))

    async def queue(self, batch):  # type: ignore[no-untyped-def]
        """The Queues consumer (the durable event path): edge.queue_consumer."""
        await on_queue(batch, self.env, self.ctx)
