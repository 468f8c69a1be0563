/*-------------------------------------------------------------------------
 *
 * barrier_state.c
 *		What the server knows about a token's transaction, without waiting.
 *
 * The answer comes from the same sources as pg_xact_status() and tuple
 * visibility: the proc array (or, on a hot standby, the known-assigned
 * xids) for "still running", then the commit log.  Like heap visibility
 * checks, TransactionIdIsInProgress() is asked before the commit log: a
 * transaction is marked committed in clog before it leaves the proc array,
 * and only then are its effects visible to new snapshots.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_enum.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"

#include "barrier_internal.h"

static const char *const txb_state_labels[] = {
	[TXB_IN_PROGRESS] = "in progress",
	[TXB_COMMITTED] = "committed",
	[TXB_ABORTED] = "aborted",
};

/*
 * Is fxid recent enough that the commit log still has its outcome?
 *
 * The caller holds XactTruncationLock, so the answer stays true until it
 * is released.  Same reasoning as TransactionIdInRecentPast() in
 * xid8funcs.c: oldestClogXid is at most 2^31 xids behind the next xid, so
 * its epoch is either the next xid's epoch or the one before.
 */
static bool
txb_clog_knows(FullTransactionId fxid, FullTransactionId next)
{
	TransactionId oldest_xid = TxbTransamVariables->oldestClogXid;
	TransactionId next_xid = XidFromFullTransactionId(next);
	uint32		epoch = EpochFromFullTransactionId(next);
	FullTransactionId oldest;

	if (oldest_xid > next_xid)
	{
		if (epoch == 0)
			return true;		/* cannot happen: nothing before epoch 0 */
		epoch--;
	}
	oldest = FullTransactionIdFromEpochAndXid(epoch, oldest_xid);
	return !FullTransactionIdPrecedes(fxid, oldest);
}

/*
 * On a primary, a token at or past the next xid names no transaction: it
 * was never handed out by this server (or by the cluster it was restored
 * from).  Waiting for it could hang forever or, later, name a different
 * transaction, so it is an error.  On a standby it is one that replay has
 * not reached yet.
 */
static void
txb_report_not_yet_seen(FullTransactionId fxid)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("barrier token %llu is in the future",
					(unsigned long long) U64FromFullTransactionId(fxid)),
			 errdetail("No transaction with that id has started on this server."),
			 errhint("Tokens are the values returned by barrier_enqueue() on this cluster.")));
}

/*
 * Classify a token.  Errors out on the invalid token 0, on a token the
 * commit log has forgotten, and on a primary on a token from the future;
 * everything else is reported to the caller, who decides what "not yet
 * replayed" and "own transaction" mean for it.
 */
TxbLookup
txb_lookup(FullTransactionId fxid, TxbState *state)
{
	TransactionId xid = XidFromFullTransactionId(fxid);
	FullTransactionId next;
	TxbLookup	result;

	*state = TXB_IN_PROGRESS;

	if (!TransactionIdIsValid(xid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("barrier token %llu does not name a transaction",
						(unsigned long long) U64FromFullTransactionId(fxid)),
				 errhint("Tokens are the values returned by barrier_enqueue().")));

	/* Bootstrap and frozen xids are committed by definition. */
	if (!TransactionIdIsNormal(xid))
	{
		if (EpochFromFullTransactionId(fxid) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("barrier token %llu does not name a transaction",
							(unsigned long long) U64FromFullTransactionId(fxid)),
					 errhint("Tokens are the values returned by barrier_enqueue().")));
		*state = TXB_COMMITTED;
		return TXB_LOOKUP_DONE;
	}

	/* Keeps clog from being truncated under us while we read it. */
	LWLockAcquire(XactTruncationLock, LW_SHARED);

	next = ReadNextFullTransactionId();
	if (!FullTransactionIdPrecedes(fxid, next))
	{
		LWLockRelease(XactTruncationLock);
		if (!RecoveryInProgress())
			txb_report_not_yet_seen(fxid);
		return TXB_LOOKUP_NOT_YET_SEEN;
	}

	if (!txb_clog_knows(fxid, next))
	{
		LWLockRelease(XactTruncationLock);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("outcome of barrier token %llu is no longer known",
						(unsigned long long) U64FromFullTransactionId(fxid)),
				 errdetail("The commit log has been truncated past that transaction."),
				 errhint("Wait on a token within autovacuum_freeze_max_age transactions of its creation.")));
	}

	if (TransactionIdIsCurrentTransactionId(xid))
		result = TXB_LOOKUP_OWN;
	else if (TransactionIdIsInProgress(xid))
		result = TXB_LOOKUP_RUNNING;
	else
	{
		/*
		 * Not running and not committed means aborted, explicitly or by a
		 * crash that left no abort record.
		 */
		*state = TransactionIdDidCommit(xid) ? TXB_COMMITTED : TXB_ABORTED;
		result = TXB_LOOKUP_DONE;
	}

	LWLockRelease(XactTruncationLock);
	return result;
}

/*
 * Fill values[] with the enum Datums of each TxbState, for the barrier_state
 * type with OID enumtype.  Done once per call, not once per token.
 */
void
txb_state_datums(Oid enumtype, Datum *values)
{
	for (int i = 0; i < (int) lengthof(txb_state_labels); i++)
		values[i] = DirectFunctionCall2(enum_in,
										CStringGetDatum(txb_state_labels[i]),
										ObjectIdGetDatum(enumtype));
}
