/*-------------------------------------------------------------------------
 *
 * barrier_reserve.c
 *		Token reservation: crash-safe tokens for the price of one WAL record
 *		per range of transaction ids (tx_barrier.token_reservation).
 *
 * By default each barrier (sub)transaction makes its own xid durable with a
 * small WAL record and a flush (barrier_token.c).  In reservation mode one
 * record says "xids up to X are reserved", is made as durable as a commit
 * (local flush, synchronous standbys), and every token at or below X needs
 * nothing more.  The record belongs to a custom WAL resource manager whose
 * redo remembers the highest X; when recovery ends (crash recovery, or a
 * standby's promotion) nextXid is advanced past it, so no token handed out
 * under a reservation is ever given to another transaction.
 *
 * Three limits keep that true:
 *
 * - A checkpoint's redo pointer moves past older reservations, and crash
 *	 recovery only replays from there.  So a reservation counts only while
 *	 the redo pointer it was made under is still current: the first token
 *	 after a checkpoint begins writes a new one.  (A token whose xid was
 *	 assigned before the checkpoint began is below the checkpoint's nextXid,
 *	 which is read after the new redo pointer is published.)
 * - A reservation ends at the end of the commit log page of the token that
 *	 asked for it: that page's zeroing record precedes the reservation in
 *	 WAL, so after a crash every reserved xid has its clog page, and the
 *	 first xid after recovery starts on a page that exists or a new one.
 * - It reaches at most TXB_RESERVE_AHEAD xids ahead: a hot standby counts
 *	 the xids a primary skipped after a crash as running until its next
 *	 running-xacts record, and its table of those is bounded.
 *
 * On a standby replay does not advance nextXid (only promotion does), so a
 * token that replay has not reached yet is still "not yet seen" there.
 *
 * The mode needs tx_barrier in shared_preload_libraries on the primary and
 * every standby: WAL with reservations cannot be replayed without the
 * library.  The resource manager id must be registered on PostgreSQL's
 * wiki (CustomWALResourceManagers) before a release.
 *
 * Locking: the published reservation (mark, and the redo pointer it was
 * made under) is read and written under a spinlock, held for a few
 * instructions.  Writers are not serialized: two backends crossing the
 * mark at once may both write a record, which is harmless.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/rmgr.h"
#include "access/transam.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#include "barrier_internal.h"

/*
 * Our resource manager id, in the range for custom resource managers, not
 * the experimental one; to be registered on the wiki before release.
 */
#define TXB_RMGR_ID			150
#define TXB_RMGR_NAME		"tx_barrier"

/* The one record type: xids up to "upto" are reserved. */
#define XLOG_TXB_RESERVE	0x00

/* How far ahead of the asking token a reservation reaches, at most. */
#define TXB_RESERVE_AHEAD	512

/* Transactions per commit log page (clog.c's CLOG_XACTS_PER_PAGE). */
#define TXB_CLOG_XACTS_PER_PAGE ((uint64) BLCKSZ * 4)

typedef struct TxbReserveRecord
{
	uint64		upto;			/* FullTransactionId, as a number */
} TxbReserveRecord;

typedef struct TxbReserveShared
{
	slock_t		mutex;
	uint64		mark;			/* tokens <= mark are covered ... */
	XLogRecPtr	mark_redo;		/* ... while this is the redo pointer */
} TxbReserveShared;

/* NULL unless preloaded. */
static TxbReserveShared *txb_reserve = NULL;

/* Redo state, in the startup process: the highest reservation replayed. */
static uint64 txb_reserve_replayed = 0;

static shmem_request_hook_type txb_reserve_prev_request_hook = NULL;
static shmem_startup_hook_type txb_reserve_prev_startup_hook = NULL;

static void
txb_reserve_redo(XLogReaderState *record)
{
	TxbReserveRecord rec;

	if ((XLogRecGetInfo(record) & ~XLR_INFO_MASK) != XLOG_TXB_RESERVE)
		elog(PANIC, "tx_barrier redo: unknown record type %u",
			 XLogRecGetInfo(record) & ~XLR_INFO_MASK);
	memcpy(&rec, XLogRecGetData(record), sizeof(rec));
	txb_reserve_replayed = Max(txb_reserve_replayed, rec.upto);
}

static void
txb_reserve_desc(StringInfo buf, XLogReaderState *record)
{
	TxbReserveRecord rec;

	memcpy(&rec, XLogRecGetData(record), sizeof(rec));
	appendStringInfo(buf, "reserved up to xid %llu",
					 (unsigned long long) rec.upto);
}

static const char *
txb_reserve_identify(uint8 info)
{
	return (info & ~XLR_INFO_MASK) == XLOG_TXB_RESERVE ? "RESERVE" : NULL;
}

static void
txb_reserve_startup(void)
{
	txb_reserve_replayed = 0;
}

/*
 * End of recovery: nothing handed out under a replayed reservation may be
 * assigned again.
 */
static void
txb_reserve_cleanup(void)
{
	FullTransactionId upto = FullTransactionIdFromU64(txb_reserve_replayed);

	if (txb_reserve_replayed != 0 &&
		FullTransactionIdFollowsOrEquals(upto, ReadNextFullTransactionId()))
		AdvanceNextFullTransactionIdPastXid(XidFromFullTransactionId(upto));
}

static RmgrData txb_rmgr = {
	.rm_name = TXB_RMGR_NAME,
	.rm_redo = txb_reserve_redo,
	.rm_desc = txb_reserve_desc,
	.rm_identify = txb_reserve_identify,
	.rm_startup = txb_reserve_startup,
	.rm_cleanup = txb_reserve_cleanup,
};

static void
txb_reserve_shmem_request(void)
{
	if (txb_reserve_prev_request_hook)
		txb_reserve_prev_request_hook();
	RequestAddinShmemSpace(sizeof(TxbReserveShared));
}

static void
txb_reserve_shmem_startup(void)
{
	bool		found;

	if (txb_reserve_prev_startup_hook)
		txb_reserve_prev_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	txb_reserve = ShmemInitStruct("tx_barrier reservation",
								  sizeof(TxbReserveShared), &found);
	if (!found)
	{
		SpinLockInit(&txb_reserve->mutex);
		txb_reserve->mark = 0;
		txb_reserve->mark_redo = InvalidXLogRecPtr;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * From _PG_init.  The resource manager is registered whenever the library
 * is preloaded, so that WAL with reservations replays even after the mode
 * was turned off.
 */
void
txb_reserve_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	RegisterCustomRmgr(TXB_RMGR_ID, &txb_rmgr);
	txb_reserve_prev_request_hook = shmem_request_hook;
	shmem_request_hook = txb_reserve_shmem_request;
	txb_reserve_prev_startup_hook = shmem_startup_hook;
	shmem_startup_hook = txb_reserve_shmem_startup;
}

/* Is fxid under the published reservation, made under redo? */
static bool
txb_reserve_covers(FullTransactionId fxid, XLogRecPtr redo)
{
	bool		covered;

	SpinLockAcquire(&txb_reserve->mutex);
	covered = txb_reserve->mark_redo == redo &&
		U64FromFullTransactionId(fxid) <= txb_reserve->mark;
	SpinLockRelease(&txb_reserve->mutex);
	return covered;
}

/*
 * Make sure a server restart or a promotion can never hand out fxid again,
 * by the published reservation or a new one.  Returns false if the new
 * record was only queued for the WAL writer (synchronous_commit = off).
 */
bool
txb_reserve_cover(FullTransactionId fxid)
{
	XLogRecPtr	redo;
	uint64		page_last;
	TxbReserveRecord rec;
	XLogRecPtr	lsn;
	bool		durable;

	if (txb_reserve == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tx_barrier.token_reservation requires tx_barrier in shared_preload_libraries"),
				 errdetail("Reservations are WAL records that only a preloaded library can replay."),
				 errhint("Add tx_barrier to shared_preload_libraries on the primary and every standby and restart them, or turn tx_barrier.token_reservation off.")));

	redo = GetRedoRecPtr();
	if (txb_reserve_covers(fxid, redo))
	{
		txb_count(TXB_C_TOKENS_COVERED, 1);
		return true;
	}

	/* To the end of fxid's clog page, at most TXB_RESERVE_AHEAD ahead. */
	page_last = U64FromFullTransactionId(fxid) -
		XidFromFullTransactionId(fxid) % TXB_CLOG_XACTS_PER_PAGE +
		TXB_CLOG_XACTS_PER_PAGE - 1;
	rec.upto = Min(U64FromFullTransactionId(fxid) + TXB_RESERVE_AHEAD - 1,
				   page_last);

	XLogBeginInsert();
	XLogRegisterData((char *) &rec, sizeof(rec));
	lsn = XLogInsert(TXB_RMGR_ID, XLOG_TXB_RESERVE);
	txb_count(TXB_C_TOKEN_RECORDS, 1);
	durable = txb_token_wal_durable(lsn);

	/*
	 * Publish it for the other backends only once it is as durable as a
	 * commit.  One made under an older redo pointer than the published one is
	 * worth nothing to them.
	 */
	if (durable)
	{
		SpinLockAcquire(&txb_reserve->mutex);
		if (txb_reserve->mark_redo != redo)
		{
			if (txb_reserve->mark_redo < redo)
			{
				txb_reserve->mark_redo = redo;
				txb_reserve->mark = rec.upto;
			}
		}
		else
			txb_reserve->mark = Max(txb_reserve->mark, rec.upto);
		SpinLockRelease(&txb_reserve->mutex);
	}
	return durable;
}
