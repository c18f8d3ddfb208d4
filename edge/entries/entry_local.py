"""Worker entry for workerd's older Python Workers (wrangler 3.92, offline local development)."""

from edge.interop import on_queue as consume_queue
from edge.interop import serve


async def on_fetch(request, env, ctx=None):  # type: ignore[no-untyped-def]
    return await serve(request, env, ctx)


async def on_queue(batch, env, ctx=None):  # type: ignore[no-untyped-def]
    """The Queues consumer (wrangler 3.92 cannot invoke a Python consumer locally)."""
    await consume_queue(batch, env, ctx)
