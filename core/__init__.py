"""edgepick's decision core: pure Python (stdlib + msgpack), no I/O, clock or randomness of its own.

Time, seeds and bytes always come in as arguments, so the same code runs unchanged in
CPython, in Pyodide and in Cloudflare Python Workers.
"""
