"""Producer with psycopg2: the task is published inside the transaction."""
import psycopg2

from tasks import DSN, send_invoice


def bill(conn, amount):
    """Inserts an invoice and spawns its task, in conn's open transaction;
    the caller commits or rolls back."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO invoices (amount) VALUES (%s) RETURNING id", (amount,))
        (invoice_id,) = cur.fetchone()
    result = send_invoice.apply_async_with_barrier(args=(invoice_id,), db_connection=conn)
    return invoice_id, result


if __name__ == "__main__":
    conn = psycopg2.connect(DSN)
    with conn:                                   # COMMIT at the end of the block
        invoice_id, result = bill(conn, 42)
    print("invoice", invoice_id, "task", result.id, "token", result.barrier_token)
