/*-------------------------------------------------------------------------
 *
 * barrier_monitor.c
 *		Shared memory: counters and the registry of waiting sessions.
 *
 * With tx_barrier in shared_preload_libraries, a small shared memory
 * segment holds cluster-wide counters (atomics), one slot per backend
 * saying which token it is waiting on and since when (barrier_waiters()
 * reads it, with the full 64-bit token, on primaries and standbys alike).
 * Without preloading there is no shared memory to put them in; counters
 * are then this session's, and waits on a primary are still visible as
 * transactionid lock waits in pg_locks.
 *
 * Locking: counters are atomics.  Each slot is written only by its own
 * backend; readers check the token before and after reading the rest, so
 * no lock is taken.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/xid8.h"

#include "barrier_internal.h"

/* What one backend is waiting on; token 0 means nothing. */
typedef struct TxbWaiterSlot
{
	pg_atomic_uint64 token;
	int			pid;
	TimestampTz since;
} TxbWaiterSlot;

typedef struct TxbShared
{
	pg_atomic_uint64 counters[TXB_NUM_COUNTERS];
	int			nslots;
	TxbWaiterSlot slots[FLEXIBLE_ARRAY_MEMBER];
} TxbShared;

/* NULL unless preloaded. */
static TxbShared *txb_shared = NULL;

/* This session's counters, used when not preloaded. */
static uint64 txb_local_counters[TXB_NUM_COUNTERS];

/* This backend's slot while it waits, for cleanup at exit. */
static TxbWaiterSlot *txb_my_slot = NULL;
static bool txb_exit_callback_registered = false;

static shmem_request_hook_type txb_prev_shmem_request_hook = NULL;
static shmem_startup_hook_type txb_prev_shmem_startup_hook = NULL;

static Size
txb_shared_size(void)
{
	return add_size(offsetof(TxbShared, slots),
					mul_size(TXB_BACKEND_SLOTS, sizeof(TxbWaiterSlot)));
}

static void
txb_shmem_request(void)
{
	if (txb_prev_shmem_request_hook)
		txb_prev_shmem_request_hook();
	RequestAddinShmemSpace(txb_shared_size());
}

static void
txb_shmem_startup(void)
{
	bool		found;

	if (txb_prev_shmem_startup_hook)
		txb_prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	txb_shared = ShmemInitStruct("tx_barrier", txb_shared_size(), &found);
	if (!found)
	{
		for (int i = 0; i < TXB_NUM_COUNTERS; i++)
			pg_atomic_init_u64(&txb_shared->counters[i], 0);
		txb_shared->nslots = TXB_BACKEND_SLOTS;
		for (int i = 0; i < txb_shared->nslots; i++)
		{
			pg_atomic_init_u64(&txb_shared->slots[i].token, 0);
			txb_shared->slots[i].pid = 0;
			txb_shared->slots[i].since = 0;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* From _PG_init: hook into shared memory set-up when preloaded. */
void
txb_monitor_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	txb_prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = txb_shmem_request;
	txb_prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = txb_shmem_startup;
}

/* Never errors: called from transaction callbacks. */
void
txb_count(TxbCounter c, uint64 delta)
{
	if (txb_shared != NULL)
		pg_atomic_fetch_add_u64(&txb_shared->counters[c], delta);
	else
		txb_local_counters[c] += delta;
}

void
txb_count_wait(TxbState state)
{
	txb_count(TXB_C_WAITS, 1);
	switch (state)
	{
		case TXB_COMMITTED:
			txb_count(TXB_C_WAITS_COMMITTED, 1);
			break;
		case TXB_ABORTED:
			txb_count(TXB_C_WAITS_ABORTED, 1);
			break;
		case TXB_IN_PROGRESS:
			txb_count(TXB_C_WAITS_TIMED_OUT, 1);
			break;
	}
}

/* A backend that dies while waiting (FATAL, terminate) frees its slot. */
static void
txb_monitor_exit(int code, Datum arg)
{
	txb_monitor_wait_end();
}

/* The backend starts blocking on fxid. */
void
txb_monitor_wait_begin(FullTransactionId fxid)
{
	TxbWaiterSlot *slot;
	int			slotno = TxbMyBackendSlot();

	if (txb_shared == NULL || slotno < 0 || slotno >= txb_shared->nslots)
		return;

	if (!txb_exit_callback_registered)
	{
		before_shmem_exit(txb_monitor_exit, (Datum) 0);
		txb_exit_callback_registered = true;
	}

	slot = &txb_shared->slots[slotno];
	slot->pid = MyProcPid;
	slot->since = GetCurrentTimestamp();
	/* Readers trust pid and since only once they see the token. */
	pg_write_barrier();
	pg_atomic_write_u64(&slot->token, U64FromFullTransactionId(fxid));
	txb_my_slot = slot;
}

/* The backend stopped blocking, by an answer, a timeout or an error. */
void
txb_monitor_wait_end(void)
{
	if (txb_my_slot == NULL)
		return;
	pg_atomic_write_u64(&txb_my_slot->token, 0);
	txb_my_slot = NULL;
}

PG_FUNCTION_INFO_V1(barrier_stats);

/*
 * barrier_stats(): the counters, cluster-wide or this session's.
 */
Datum
barrier_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[TXB_NUM_COUNTERS + 1];
	bool		nulls[TXB_NUM_COUNTERS + 1] = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	values[0] = CStringGetTextDatum(txb_shared != NULL ? "cluster" : "session");
	for (int i = 0; i < TXB_NUM_COUNTERS; i++)
	{
		uint64		v = txb_shared != NULL ?
			pg_atomic_read_u64(&txb_shared->counters[i]) :
			txb_local_counters[i];

		values[i + 1] = Int64GetDatum((int64) v);
	}

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

PG_FUNCTION_INFO_V1(barrier_waiters);

/*
 * barrier_waiters(): the sessions blocked in barrier_wait/barrier_wait_all
 * right now, with the token each waits on and since when, and one row per
 * token of each session blocked in barrier_wait_any.
 */
Datum
barrier_waiters(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (txb_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("barrier_waiters() requires tx_barrier in shared_preload_libraries"),
				 errhint("Without it, waits on a primary show in pg_locks as ungranted transactionid locks.")));

	InitMaterializedSRF(fcinfo, 0);

	for (int i = 0; i < txb_shared->nslots; i++)
	{
		TxbWaiterSlot *slot = &txb_shared->slots[i];
		uint64		token = pg_atomic_read_u64(&slot->token);
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		int			pid;
		TimestampTz since;

		if (token == 0)
			continue;
		pg_read_barrier();
		pid = slot->pid;
		since = slot->since;
		pg_read_barrier();
		/* Skip a slot that changed hands while we read it. */
		if (pg_atomic_read_u64(&slot->token) != token)
			continue;

		values[0] = Int32GetDatum(pid);
		values[1] = FullTransactionIdGetDatum(FullTransactionIdFromU64(token));
		values[2] = TimestampTzGetDatum(since);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	txb_any_report_waiters(rsinfo);
	return (Datum) 0;
}
