/*
 * tap.h - a minimal Test Anything Protocol producer for the C tests.
 * Single-threaded use: only the main thread reports results.
 */
#ifndef TXB_TAP_H
#define TXB_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count;
static int tap_failed;

static int tap_ok(int pass, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
static void tap_diag(const char *fmt,...)
			__attribute__((format(printf, 1, 2)));

/* Reports one test; returns pass, so callers can add diagnostics. */
static int
tap_ok(int pass, const char *fmt,...)
{
	va_list		ap;

	tap_count++;
	if (!pass)
		tap_failed++;
	printf("%s %d - ", pass ? "ok" : "not ok", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return pass;
}

static void
tap_diag(const char *fmt,...)
{
	va_list		ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Compares two integers, with a diagnostic on failure. */
#define tap_is_int(got, want, ...) \
	do { \
		long long tap_g_ = (long long) (got); \
		long long tap_w_ = (long long) (want); \
		if (!tap_ok(tap_g_ == tap_w_, __VA_ARGS__)) \
			tap_diag("  got %lld, expected %lld (%s)", tap_g_, tap_w_, #got); \
	} while (0)

/* Compares two strings, with a diagnostic on failure. */
#define tap_is_str(got, want, ...) \
	do { \
		const char *tap_g_ = (got); \
		const char *tap_w_ = (want); \
		if (!tap_ok(tap_g_ != NULL && strcmp(tap_g_, tap_w_) == 0, \
					__VA_ARGS__)) \
			tap_diag("  got \"%s\", expected \"%s\"", \
					 tap_g_ ? tap_g_ : "(null)", tap_w_); \
	} while (0)

/* Prints the plan; the exit status of the test program. */
static int
tap_done(void)
{
	printf("1..%d\n", tap_count);
	if (tap_failed)
		tap_diag("%d of %d tests failed", tap_failed, tap_count);
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

static void
tap_bail(const char *why)
{
	printf("Bail out! %s\n", why);
	fflush(stdout);
}

#endif							/* TXB_TAP_H */
