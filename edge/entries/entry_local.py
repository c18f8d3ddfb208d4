"""Worker entry for workerd's older Python Workers (wrangler 3.92, offline local development)."""

from edge.interop import serve


async def on_fetch(request, env, ctx=None):  # type: ignore[no-untyped-def]
    return await serve(request, env, ctx)
