/*-------------------------------------------------------------------------
 *
 * tx_barrier.c
 *		Module entry points and SQL-callable functions of tx_barrier.
 *
 * A transaction calls barrier_enqueue() and sends the token with its
 * asynchronous task to any broker, before COMMIT.  The worker calls
 * barrier_wait(token) before touching the data and learns, without
 * polling, whether the transaction committed or aborted.
 *
 * The functions here only convert arguments and results; the work is done
 * in barrier_token.c (enqueue), barrier_state.c (status) and
 * barrier_wait.c (waiting).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/xid8.h"

#include "barrier_internal.h"

TXB_MODULE_MAGIC;

bool		txb_durable_tokens = true;

void
_PG_init(void)
{
	DefineCustomBoolVariable("tx_barrier.durable_tokens",
							 "Makes each barrier token crash-safe before barrier_enqueue() returns.",
							 "When off, a token whose transaction is lost in a crash can later "
							 "name a different transaction.",
							 &txb_durable_tokens,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("tx_barrier");

	txb_xact_init();
	txb_monitor_init();
	txb_standby_init();
}

/*
 * Convert a timeout argument to a deadline.  NULL means no limit; a zero
 * timeout makes the wait a status check.
 */
static void
txb_deadline(FunctionCallInfo fcinfo, int argno, bool *has_deadline,
			 TimestampTz *deadline)
{
	Interval   *iv;
	int64		usecs;
	int64		days_usecs;
	int64		months_usecs;

	*has_deadline = false;
	*deadline = DT_NOEND;
	if (PG_ARGISNULL(argno))
		return;

	iv = PG_GETARG_INTERVAL_P(argno);
	if (pg_mul_s64_overflow((int64) iv->day, USECS_PER_DAY, &days_usecs) ||
		pg_mul_s64_overflow((int64) iv->month, DAYS_PER_MONTH * USECS_PER_DAY,
							&months_usecs) ||
		pg_add_s64_overflow(iv->time, days_usecs, &usecs) ||
		pg_add_s64_overflow(usecs, months_usecs, &usecs))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("barrier timeout is out of range")));

	if (usecs < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("barrier timeout must not be negative"),
				 errhint("Use NULL to wait without a limit, or 0 to check the state without waiting.")));

	/* Past the end of representable time is as good as no limit. */
	if (pg_add_s64_overflow(GetCurrentTimestamp(), usecs, deadline) ||
		!IS_VALID_TIMESTAMP(*deadline))
		return;
	*has_deadline = true;
}

/*
 * The barrier_state Datum of each TxbState, looked up once per call site
 * (cached in fn_extra), not once per call: workers call these functions in
 * tight loops.  The type comes from the function's declared result: the
 * enum itself, or the "state" column of barrier_wait_all's rows.
 */
static const Datum *
txb_labels(FunctionCallInfo fcinfo)
{
	Datum	   *labels = (Datum *) fcinfo->flinfo->fn_extra;
	TupleDesc	tupdesc;
	Oid			type;

	if (labels != NULL)
		return labels;

	if (get_call_result_type(fcinfo, &type, &tupdesc) == TYPEFUNC_COMPOSITE)
		type = TupleDescAttr(tupdesc, tupdesc->natts - 1)->atttypid;
	if (!OidIsValid(type) || !type_is_enum(type))
		elog(ERROR, "tx_barrier function must return barrier_state");

	labels = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
								TXB_NUM_STATES * sizeof(Datum));
	txb_state_datums(type, labels);
	fcinfo->flinfo->fn_extra = labels;
	return labels;
}

PG_FUNCTION_INFO_V1(barrier_enqueue);

/*
 * barrier_enqueue() returns xid8
 */
Datum
barrier_enqueue(PG_FUNCTION_ARGS)
{
	PG_RETURN_FULLTRANSACTIONID(txb_enqueue());
}

PG_FUNCTION_INFO_V1(barrier_status);

/*
 * barrier_status(token xid8) returns barrier_state
 */
Datum
barrier_status(PG_FUNCTION_ARGS)
{
	FullTransactionId fxid = PG_GETARG_FULLTRANSACTIONID(0);
	const Datum *labels = txb_labels(fcinfo);
	TxbState	state;

	switch (txb_lookup(fxid, &state))
	{
		case TXB_LOOKUP_DONE:
			break;
		case TXB_LOOKUP_NOT_YET_SEEN:
		case TXB_LOOKUP_RUNNING:
		case TXB_LOOKUP_OWN:
			state = TXB_IN_PROGRESS;
			break;
	}
	PG_RETURN_DATUM(labels[state]);
}

PG_FUNCTION_INFO_V1(barrier_wait);

/*
 * barrier_wait(token xid8, timeout interval DEFAULT NULL) returns barrier_state
 */
Datum
barrier_wait(PG_FUNCTION_ARGS)
{
	FullTransactionId fxid;
	bool		has_deadline;
	TimestampTz deadline;
	TxbState	state;

	/* Validate the timeout even when the token is NULL. */
	txb_deadline(fcinfo, 1, &has_deadline, &deadline);
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	fxid = PG_GETARG_FULLTRANSACTIONID(0);

	state = txb_wait(fxid, has_deadline, deadline);
	txb_count_wait(state);
	txb_warn_if_snapshot_hides(fxid, state);
	PG_RETURN_DATUM(txb_labels(fcinfo)[state]);
}

PG_FUNCTION_INFO_V1(barrier_wait_all);

/*
 * barrier_wait_all(tokens xid8[], timeout interval DEFAULT NULL)
 *		returns table(token xid8, state barrier_state)
 *
 * One row per array element, in array order.  The timeout bounds the whole
 * call: once it has run out, the remaining tokens are only looked up.
 */
Datum
barrier_wait_all(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		has_deadline;
	TimestampTz deadline;
	ArrayType  *tokens;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems;
	const Datum *labels;
	bool		hidden_warned = false;

	txb_deadline(fcinfo, 1, &has_deadline, &deadline);

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		return (Datum) 0;

	tokens = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(tokens) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("barrier tokens must be a one-dimensional array")));
	deconstruct_array(tokens, XID8OID, sizeof(FullTransactionId),
					  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &elem_nulls, &nelems);

	labels = txb_labels(fcinfo);

	for (int i = 0; i < nelems; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = elems[i];
		if (elem_nulls[i])
		{
			nulls[0] = nulls[1] = true;
			values[1] = (Datum) 0;
		}
		else
		{
			FullTransactionId fxid = DatumGetFullTransactionId(elems[i]);
			TxbState	state = txb_wait(fxid, has_deadline, deadline);

			txb_count_wait(state);
			if (!hidden_warned && state == TXB_COMMITTED &&
				IsolationUsesXactSnapshot())
			{
				txb_warn_if_snapshot_hides(fxid, state);
				hidden_warned = true;
			}
			values[1] = labels[state];
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 values, nulls);
	}

	return (Datum) 0;
}
