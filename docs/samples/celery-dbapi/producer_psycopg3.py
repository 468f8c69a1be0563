"""Producer with psycopg 3: the same, in an explicit transaction block."""
import psycopg

from tasks import DSN, send_invoice


def bill(conn, amount):
    """Inserts an invoice and spawns its task, in conn's open transaction."""
    (invoice_id,) = conn.execute(
        "INSERT INTO invoices (amount) VALUES (%s) RETURNING id", (amount,)).fetchone()
    result = send_invoice.apply_async_with_barrier(args=(invoice_id,), db_connection=conn)
    return invoice_id, result


if __name__ == "__main__":
    with psycopg.connect(DSN, autocommit=True) as conn:
        with conn.transaction():                 # BEGIN ... COMMIT
            invoice_id, result = bill(conn, 42)
    print("invoice", invoice_id, "task", result.id, "token", result.barrier_token)
