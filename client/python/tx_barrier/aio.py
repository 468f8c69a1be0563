"""The helpers of :mod:`tx_barrier` for asyncio: the same SQL and the same
typed errors, on a psycopg 3 ``psycopg.AsyncConnection``.

``await wait(...)`` suspends the coroutine, not the event loop: the server
blocks, the driver awaits the socket.
"""

from . import (SQL_ENQUEUE, SQL_STATUS, SQL_WAIT, SQL_WAIT_ALL, map_error,
               normalize_token)

__all__ = ["enqueue", "status", "wait", "wait_all"]


async def _execute(connection, sql, params):
    async with connection.cursor() as cur:
        try:
            await cur.execute(sql, params)
        except Exception as exc:
            mapped = map_error(exc, cur)
            if mapped is not None:
                raise mapped from exc
            raise
        return await cur.fetchall()


def _seconds(timeout):
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must not be negative")
    return None if timeout is None else float(timeout)


async def enqueue(connection):
    """Takes a token in the connection's current transaction (see
    :func:`tx_barrier.enqueue`)."""
    rows = await _execute(connection, SQL_ENQUEUE, ())
    return normalize_token(rows[0][0])


async def status(connection, token):
    """The state of the token's transaction, without waiting."""
    rows = await _execute(connection, SQL_STATUS, (normalize_token(token),))
    return rows[0][0]


async def wait(connection, token, timeout=None):
    """Waits until the token's transaction has ended (see
    :func:`tx_barrier.wait`); use an autocommit connection."""
    rows = await _execute(connection, SQL_WAIT,
                          (normalize_token(token), _seconds(timeout)))
    return rows[0][0]


async def wait_all(connection, tokens, timeout=None):
    """Waits for several tokens with one shared timeout; returns a dict
    token -> state."""
    toks = [normalize_token(t) for t in tokens]
    rows = await _execute(connection, SQL_WAIT_ALL, (toks, _seconds(timeout)))
    return {tok: state for tok, state in rows}
