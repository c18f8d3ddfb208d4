"""Worker entry for the current Python Workers runtime (production): a WorkerEntrypoint."""

from workers import Response, WorkerEntrypoint

from edge.interop import serve


class Default(WorkerEntrypoint):  # type: ignore[misc]
    async def fetch(self, request):  # type: ignore[no-untyped-def]
        return Response(await serve(request, self.env, self.ctx))
