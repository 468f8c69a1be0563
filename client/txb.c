/*
 * txb - command-line client for tx_barrier transaction barriers.
 *
 *   txb [OPTIONS] status TOKEN
 *   txb [OPTIONS] wait TOKEN
 *   txb [OPTIONS] wait-all TOKEN...
 *   txb [OPTIONS] run TOKEN -- COMMAND [ARGS...]
 *
 * Exit status: 0 committed, 1 aborted, 2 still in progress (timeout),
 * 3 usage, connection or server error; for "run" the command's own status
 * once the transaction committed; 128+N when interrupted by signal N.
 * See txb.1 for the full reference.
 */
#include "tx_barrier.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_COMMITTED 0
#define EXIT_ABORTED 1
#define EXIT_IN_PROGRESS 2
#define EXIT_TROUBLE 3

static const char *progname = "txb";

/* Set by the SIGINT/SIGTERM handler: the wait is then cancelled. */
static volatile sig_atomic_t interrupted;

static void
on_signal(int signo)
{
	interrupted = signo;
}

static void
usage(FILE *out)
{
	fprintf(out,
			"txb waits for PostgreSQL transactions that enqueued a tx_barrier token.\n"
			"\n"
			"Usage:\n"
			"  txb [OPTIONS] status TOKEN            print the state, do not wait\n"
			"  txb [OPTIONS] wait TOKEN              wait until the transaction ended\n"
			"  txb [OPTIONS] wait-all TOKEN...       wait for all; print \"TOKEN STATE\" lines\n"
			"  txb [OPTIONS] run TOKEN -- COMMAND [ARGS...]\n"
			"                                        wait; run COMMAND only if committed\n"
			"\n"
			"Options (anywhere before \"--\"):\n"
			"  -d, --dbname=CONNINFO    database name, connection string or URI;\n"
			"                           libpq's PG* environment variables apply\n"
			"  -t, --timeout=DURATION   give up waiting after DURATION: 250ms, 5s,\n"
			"                           1.5m, 2h, or a number of seconds (default:\n"
			"                           no limit; 0 only checks)\n"
			"  -q, --quiet              do not print states\n"
			"  -V, --version            print the version and exit\n"
			"  -?, --help               print this help and exit\n"
			"\n"
			"Exit status: 0 committed, 1 aborted, 2 still in progress (timeout),\n"
			"3 usage, connection or server error, 128+N interrupted by signal N.\n"
			"wait-all: 1 if any aborted, else 2 if any still in progress, else 0.\n"
			"run: COMMAND's own exit status if committed (126/127 if it cannot be\n"
			"executed); otherwise 1 or 2, without running COMMAND.\n");
}

static int usage_error(const char *fmt,...)
			__attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry \"%s --help\" for more information.\n", progname);
	return EXIT_TROUBLE;
}

/*
 * Parses a duration: a non-negative decimal number with an optional unit
 * ms, s, m, h (default s).  Stores milliseconds, rounded up.  0 or -1.
 */
static int
parse_duration(const char *text, int *ms)
{
	char	   *end;
	double		value;
	double		scale = 1000.0;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	value = strtod(text, &end);
	if (errno != 0 || end == text || !isfinite(value) || value < 0)
		return -1;
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		scale = 1000.0;
	else if (strcmp(end, "ms") == 0)
		scale = 1.0;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		scale = 60000.0;
	else if (strcmp(end, "h") == 0)
		scale = 3600000.0;
	else
		return -1;
	value = ceil(value * scale);
	if (value > (double) INT_MAX)
		return -1;
	*ms = (int) value;
	return 0;
}

/* The exit status for one state. */
static int
state_exit(txb_state state)
{
	switch (state)
	{
		case TXB_COMMITTED:
			return EXIT_COMMITTED;
		case TXB_ABORTED:
			return EXIT_ABORTED;
		case TXB_IN_PROGRESS:
			return EXIT_IN_PROGRESS;
		case TXB_ERROR:
			break;
	}
	return EXIT_TROUBLE;
}

static void
report_error(void)
{
	if (txb_error_sqlstate()[0] != '\0')
		fprintf(stderr, "%s: %s (SQLSTATE %s)\n", progname,
				txb_error_message(), txb_error_sqlstate());
	else
		fprintf(stderr, "%s: %s\n", progname, txb_error_message());
}

/*
 * Waits, in an event loop on the connection's socket, for the result of the
 * wait that was sent.  On SIGINT/SIGTERM, cancels it on the server.
 * Returns 0 when the result can be collected, -1 on error.
 */
static int
await_result(PGconn *conn)
{
	int			cancelled = 0;

	for (;;)
	{
		struct pollfd pfd;
		txb_poll_status st;

		if (interrupted && !cancelled)
		{
			(void) txb_cancel(conn);
			cancelled = 1;
		}
		st = txb_poll(conn);
		if (st == TXB_POLL_READY)
			return 0;
		if (st == TXB_POLL_FAILED)
			return -1;
		pfd.fd = PQsocket(conn);
		pfd.events = POLLIN | (st == TXB_POLL_WRITING ? POLLOUT : 0);
		pfd.revents = 0;
		if (pfd.fd < 0)
			return -1;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -1;
	}
}

/* Waits for one token; returns its state or TXB_ERROR. */
static txb_state
wait_one(PGconn *conn, txb_token token, int timeout_ms)
{
	if (txb_wait_send(conn, token, timeout_ms) < 0)
		return TXB_ERROR;
	if (await_result(conn) < 0)
	{
		/* Still collect, to get the library's account of the failure. */
		(void) txb_wait_result(conn);
		return TXB_ERROR;
	}
	return txb_wait_result(conn);
}

/* Waits for n tokens; 0 or -1. */
static int
wait_many(PGconn *conn, const txb_token *tokens, txb_state *states,
		  size_t n, int timeout_ms)
{
	if (txb_wait_all_send(conn, tokens, n, timeout_ms) < 0)
		return -1;
	if (await_result(conn) < 0)
	{
		(void) txb_wait_all_result(conn, states, n);
		return -1;
	}
	return txb_wait_all_result(conn, states, n);
}

/* Exit status after a failed call: interrupted, or trouble. */
static int
failure_exit(void)
{
	if (interrupted)
	{
		fprintf(stderr, "%s: interrupted; the wait was cancelled\n", progname);
		return 128 + (int) interrupted;
	}
	report_error();
	return EXIT_TROUBLE;
}

int
main(int argc, char **argv)
{
	const char *conninfo = NULL;
	const char *timeout_text = NULL;
	int			timeout_ms = -1;
	int			quiet = 0;
	const char *command = NULL;
	enum
	{
		CMD_STATUS, CMD_WAIT, CMD_WAIT_ALL, CMD_RUN
	}			cmd;
	char	  **words;
	int			nwords = 0;
	char	  **cmd_argv = NULL;
	int			have_dashdash = 0;
	txb_token  *tokens;
	size_t		ntokens;
	txb_state  *states;
	PGconn	   *conn;
	struct sigaction sa;
	const char *keywords[3];
	const char *values[3];
	int			status = EXIT_TROUBLE;
	int			i;

	words = calloc((size_t) argc + 1, sizeof(char *));
	if (words == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		return EXIT_TROUBLE;
	}

	/* Options may come before or after the subcommand, up to "--". */
	for (i = 1; i < argc; i++)
	{
		const char *arg = argv[i];
		const char *optval = NULL;

		if (strcmp(arg, "--") == 0)
		{
			have_dashdash = 1;
			cmd_argv = &argv[i + 1];
			break;
		}
		if (strcmp(arg, "-?") == 0 || strcmp(arg, "--help") == 0)
		{
			usage(stdout);
			free(words);
			return 0;
		}
		if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0)
		{
			printf("txb (tx_barrier) %s\n", txb_version());
			free(words);
			return 0;
		}
		if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0)
		{
			quiet = 1;
			continue;
		}
		if (strcmp(arg, "-d") == 0 || strcmp(arg, "--dbname") == 0 ||
			strcmp(arg, "-t") == 0 || strcmp(arg, "--timeout") == 0)
		{
			if (i + 1 >= argc)
			{
				free(words);
				return usage_error("option %s needs a value", arg);
			}
			optval = argv[++i];
		}
		else if (strncmp(arg, "--dbname=", 9) == 0)
			optval = arg + 9;
		else if (strncmp(arg, "--timeout=", 10) == 0)
			optval = arg + 10;
		else if (arg[0] == '-' && arg[1] != '\0')
		{
			free(words);
			return usage_error("unknown option \"%s\"", arg);
		}
		else
		{
			words[nwords++] = argv[i];
			continue;
		}

		if (arg[1] == 'd' || strncmp(arg, "--dbname", 8) == 0)
			conninfo = optval;
		else
			timeout_text = optval;
	}

	if (timeout_text != NULL && parse_duration(timeout_text, &timeout_ms) < 0)
	{
		free(words);
		return usage_error("invalid timeout \"%s\" (examples: 250ms, 5s, 2m, "
						   "1h, 0)", timeout_text);
	}
	if (nwords == 0)
	{
		free(words);
		return usage_error("no command given");
	}
	command = words[0];
	if (strcmp(command, "status") == 0)
		cmd = CMD_STATUS;
	else if (strcmp(command, "wait") == 0)
		cmd = CMD_WAIT;
	else if (strcmp(command, "wait-all") == 0)
		cmd = CMD_WAIT_ALL;
	else if (strcmp(command, "run") == 0)
		cmd = CMD_RUN;
	else
	{
		free(words);
		return usage_error("unknown command \"%s\"", command);
	}
	if (cmd == CMD_WAIT_ALL ? nwords < 2 : nwords != 2)
	{
		free(words);
		if (cmd == CMD_WAIT_ALL)
			return usage_error("%s needs at least one TOKEN", command);
		return usage_error("%s needs exactly one TOKEN", command);
	}
	if (cmd == CMD_RUN)
	{
		if (!have_dashdash || cmd_argv == NULL || cmd_argv[0] == NULL)
		{
			free(words);
			return usage_error("%s needs \"-- COMMAND [ARGS...]\"", command);
		}
	}
	else if (have_dashdash)
	{
		free(words);
		return usage_error("\"--\" is only for run, not for %s", command);
	}
	if (cmd == CMD_STATUS && timeout_text != NULL)
	{
		free(words);
		return usage_error("%s does not wait: --timeout is for wait, "
						   "wait-all and run", command);
	}

	ntokens = (size_t) nwords - 1;
	tokens = calloc(ntokens, sizeof(txb_token));
	states = calloc(ntokens, sizeof(txb_state));
	if (tokens == NULL || states == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		free(tokens);
		free(states);
		free(words);
		return EXIT_TROUBLE;
	}
	for (i = 1; i < nwords; i++)
	{
		if (txb_token_parse(words[i], &tokens[i - 1]) < 0)
		{
			report_error();
			free(tokens);
			free(states);
			free(words);
			return EXIT_TROUBLE;
		}
	}

	keywords[0] = "dbname";
	values[0] = conninfo;
	keywords[1] = "fallback_application_name";
	values[1] = "txb";
	keywords[2] = NULL;
	values[2] = NULL;
	if (conninfo == NULL)
	{
		keywords[0] = "fallback_application_name";
		values[0] = "txb";
		keywords[1] = NULL;
		values[1] = NULL;
	}
	conn = PQconnectdbParams(keywords, values, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		const char *msg = conn ? PQerrorMessage(conn) : "out of memory\n";

		fprintf(stderr, "%s: could not connect: %s", progname, msg);
		if (msg[0] == '\0' || msg[strlen(msg) - 1] != '\n')
			fputc('\n', stderr);
		PQfinish(conn);
		free(tokens);
		free(states);
		free(words);
		return EXIT_TROUBLE;
	}

	/*
	 * From here on, SIGINT and SIGTERM cancel the wait on the server (unless
	 * they were ignored when we started, as for background jobs).
	 */
	for (i = 0; i < 2; i++)
	{
		int			signo = i == 0 ? SIGINT : SIGTERM;
		struct sigaction old;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = 0;
		if (sigaction(signo, NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			(void) sigaction(signo, &sa, NULL);
	}

	if (cmd == CMD_STATUS || cmd == CMD_WAIT)
	{
		txb_state	st = cmd == CMD_STATUS ? txb_status(conn, tokens[0]) :
			wait_one(conn, tokens[0], timeout_ms);

		if (st == TXB_ERROR)
			status = failure_exit();
		else
		{
			if (!quiet)
				printf("%s\n", txb_state_name(st));
			status = state_exit(st);
		}
	}
	else if (cmd == CMD_RUN && cmd_argv != NULL)
	{
		txb_state	st = wait_one(conn, tokens[0], timeout_ms);

		/* Once interrupted, do not start COMMAND. */
		if (st == TXB_ERROR || interrupted)
			status = failure_exit();
		else if (st != TXB_COMMITTED)
		{
			if (!quiet)
				fprintf(stderr, "%s: %s; not running %s\n",
						txb_state_name(st),
						st == TXB_ABORTED ? "transaction aborted" :
						"transaction still in progress", cmd_argv[0]);
			status = state_exit(st);
		}
		else
		{
			/* Committed: become the command. */
			PQfinish(conn);
			conn = NULL;
			/* exec resets our handlers; ignored signals stay ignored. */
			fflush(NULL);
			execvp(cmd_argv[0], cmd_argv);
			status = (errno == ENOENT || errno == ENOTDIR) ? 127 : 126;
			fprintf(stderr, "%s: cannot run %s: %s\n", progname, cmd_argv[0],
					strerror(errno));
		}
	}
	else if (cmd == CMD_WAIT_ALL)
	{
		if (wait_many(conn, tokens, states, ntokens, timeout_ms) < 0)
			status = failure_exit();
		else
		{
			int			any_aborted = 0;
			int			any_running = 0;
			size_t		k;

			for (k = 0; k < ntokens; k++)
			{
				char		buf[TXB_TOKEN_BUFSIZE];

				(void) txb_token_format(tokens[k], buf, sizeof(buf));
				if (!quiet)
					printf("%s %s\n", buf, txb_state_name(states[k]));
				any_aborted |= states[k] == TXB_ABORTED;
				any_running |= states[k] == TXB_IN_PROGRESS;
			}
			status = any_aborted ? EXIT_ABORTED :
				any_running ? EXIT_IN_PROGRESS : EXIT_COMMITTED;
		}
	}

	PQfinish(conn);
	free(tokens);
	free(states);
	free(words);
	if (fflush(stdout) != 0 && status == EXIT_COMMITTED)
		status = EXIT_TROUBLE;
	return status;
}
