/*-------------------------------------------------------------------------
 *
 * barrier_token.c
 *		Handing out barrier tokens, crash-safe.
 *
 * A token is the full xid of the caller's current (sub)transaction.  Using
 * the subtransaction's xid makes savepoints come out right: a rolled-back
 * savepoint reads "aborted" even when its top level commits.
 *
 * The token leaves the server before the transaction commits.  If the
 * server then crashes before anything carrying that xid reached durable
 * WAL, recovery restarts the xid counter below it and the same number is
 * handed to a new, unrelated transaction: a worker holding the old token
 * would act on the new transaction's outcome.  So before the token is
 * returned we write a small WAL record whose header carries the xid (replay
 * advances nextXid past every record's xid) and make it as durable as a
 * commit would be under the session's synchronous_commit, including the
 * wait for synchronous standbys.  After a crash the lost transaction's xid
 * is then below nextXid, not running and not committed: "aborted".
 *
 * The record is an XLOG_NOOP: replay ignores it, logical decoding ignores
 * it, pg_waldump shows it, and it needs no custom resource manager (which
 * would require shared_preload_libraries).  One record per subtransaction
 * is enough; further tokens of the same subtransaction cost nothing.
 *
 * With tx_barrier.token_reservation, one record reserves a range of xids
 * ahead instead, and tokens inside it need nothing (barrier_reserve.c).
 *
 * Often no record is needed at all.  Replay also advances nextXid past
 * every xid a commit record names, so once any transaction with a newer
 * xid than ours has a durable commit record, our xid can never be handed
 * out again.  The commit log says, for each committed xid, whether its
 * commit record is flushed (synchronous commits are marked only after the
 * flush; asynchronous ones carry their record's LSN): a few lookups there,
 * starting from the newest completed xid, replace a WAL flush whenever the
 * token is taken after later transactions have committed, as when it is
 * taken late in a transaction under concurrency.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/clog.h"
#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "catalog/pg_control.h"
#include "miscadmin.h"
#include "replication/syncrep.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/lwlock.h"

#include "barrier_internal.h"

/* Payload of the XLOG_NOOP record: makes the record findable in waldump. */
typedef struct TxbTokenRecord
{
	char		magic[8];		/* "txbarier" */
	uint64		token;
} TxbTokenRecord;

/*
 * The newest subtransaction xid whose token has been made durable: further
 * tokens of the same subtransaction cost nothing.  Never reset: xids are
 * not reused, so a stale value cannot match a new token.
 */
static FullTransactionId txb_durable_fxid = {0};

/* How many completed xids to look at for a durable newer commit. */
#define TXB_COVER_PROBES	8

/*
 * Does a durable commit record of a newer transaction already keep fxid
 * from ever being handed out again?
 */
static bool
txb_token_covered(FullTransactionId fxid)
{
	FullTransactionId candidate;

	/*
	 * Under synchronous replication the record must also have reached the
	 * standbys, which the commit log does not tell.
	 */
	if (SyncRepRequested() && SyncRepStandbyNames != NULL &&
		SyncRepStandbyNames[0] != '\0')
		return false;

	LWLockAcquire(ProcArrayLock, LW_SHARED);
	candidate = TxbTransamVariables->latestCompletedXid;
	LWLockRelease(ProcArrayLock);

	for (int i = 0;
		 i < TXB_COVER_PROBES && FullTransactionIdFollows(candidate, fxid);
		 i++)
	{
		XLogRecPtr	commit_lsn;
		XidStatus	status;

		status = TransactionIdGetStatus(XidFromFullTransactionId(candidate),
										&commit_lsn);
		if (status == TRANSACTION_STATUS_COMMITTED &&
			commit_lsn <= GetFlushRecPtr(NULL))
			return true;
		FullTransactionIdRetreat(&candidate);
	}
	return false;
}

/*
 * After SyncRepWaitForLSN: did the synchronous standbys really confirm lsn?
 * A cancelled wait returns with only a WARNING, written for commits ("has
 * already committed locally"); a token must not leave the server then.
 */
static bool
txb_syncrep_confirmed(XLogRecPtr lsn)
{
	int			mode;
	bool		confirmed;

	if (!SyncRepRequested() || SyncRepStandbyNames == NULL ||
		SyncRepStandbyNames[0] == '\0')
		return true;

	/* SyncRepWaitForLSN waits for at most a flush when not committing. */
	mode = synchronous_commit == SYNCHRONOUS_COMMIT_REMOTE_WRITE ?
		SYNC_REP_WAIT_WRITE : SYNC_REP_WAIT_FLUSH;
	LWLockAcquire(SyncRepLock, LW_SHARED);
	confirmed = lsn <= WalSndCtl->lsn[mode];
	LWLockRelease(SyncRepLock);
	return confirmed;
}

/*
 * Make sure a server restart can never hand out fxid again.  Returns false
 * if the record was only queued for the WAL writer (synchronous_commit =
 * off), so that a later call with a stricter setting flushes it.
 */
static bool
txb_make_token_durable(FullTransactionId fxid)
{
	TxbTokenRecord rec;
	XLogRecPtr	lsn;

	memcpy(rec.magic, "txbarier", sizeof(rec.magic));
	rec.token = U64FromFullTransactionId(fxid);

	if (txb_token_covered(fxid))
	{
		txb_count(TXB_C_TOKENS_COVERED, 1);
		return true;
	}

	/* The record header's xl_xid is GetCurrentTransactionIdIfAny(): fxid. */
	XLogBeginInsert();
	XLogRegisterData((char *) &rec, sizeof(rec));
	lsn = XLogInsert(RM_XLOG_ID, XLOG_NOOP);
	txb_count(TXB_C_TOKEN_RECORDS, 1);

	return txb_token_wal_durable(lsn);
}

/*
 * Make the WAL up to lsn, which keeps a token's xid from being handed out
 * again, as durable as this session's commit records are: flushed, and
 * confirmed by the synchronous standbys, unless synchronous_commit is off.
 * Returns false if it was only queued for the WAL writer.  Also used for
 * reservations (barrier_reserve.c).
 */
bool
txb_token_wal_durable(XLogRecPtr lsn)
{
	if (synchronous_commit > SYNCHRONOUS_COMMIT_OFF)
	{
		XLogFlush(lsn);

		/*
		 * Waits only for remote flush, never apply: nothing to apply.  Like
		 * a commit, with interrupts held: SyncRepWaitForLSN handles a cancel
		 * or termination itself, leaving the queue first, where an error
		 * thrown from inside it would leave this backend queued.
		 */
		HOLD_INTERRUPTS();
		SyncRepWaitForLSN(lsn, false);
		RESUME_INTERRUPTS();
		if (!txb_syncrep_confirmed(lsn))
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("canceled the wait for synchronous replication of a barrier token"),
					 errdetail("The token was not returned: a failover could hand its transaction id to another transaction."),
					 errhint("The (sub)transaction that asked for the token is rolled back; retry once the synchronous standby is reachable.")));
		return true;
	}

	XLogSetAsyncXactLSN(lsn);
	return false;
}

/*
 * Return the token of the current (sub)transaction, assigning it an xid if
 * it has none yet.
 */
FullTransactionId
txb_enqueue(void)
{
	FullTransactionId fxid;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot enqueue a barrier during recovery"),
				 errdetail("A hot standby cannot assign transaction ids."),
				 errhint("Call barrier_enqueue() on the primary, in the transaction that writes the data.")));

	if (IsInParallelMode() || IsParallelWorker())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("cannot enqueue a barrier during a parallel operation")));

	fxid = GetCurrentFullTransactionId();

	if (txb_durable_tokens && !FullTransactionIdEquals(fxid, txb_durable_fxid) &&
		(txb_token_reservation ? txb_reserve_cover(fxid) :
		 txb_make_token_durable(fxid)))
		txb_durable_fxid = fxid;

	txb_xact_note_enqueue();
	return fxid;
}
