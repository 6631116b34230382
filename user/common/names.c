// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* names.c — see names.h. */
#include "common/names.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "connbeat_abi.h"
#include "connbeat_proto.h" /* enum cb_drain_state */

static const char *const tcp_state_name[CB_TCP_MAX_STATES] = {
	[CB_TCP_ESTABLISHED] = "ESTABLISHED", [CB_TCP_SYN_SENT] = "SYN_SENT",
	[CB_TCP_SYN_RECV] = "SYN_RECV",       [CB_TCP_FIN_WAIT1] = "FIN_WAIT1",
	[CB_TCP_FIN_WAIT2] = "FIN_WAIT2",     [CB_TCP_TIME_WAIT] = "TIME_WAIT",
	[CB_TCP_CLOSE] = "CLOSE",             [CB_TCP_CLOSE_WAIT] = "CLOSE_WAIT",
	[CB_TCP_LAST_ACK] = "LAST_ACK",       [CB_TCP_LISTEN] = "LISTEN",
	[CB_TCP_CLOSING] = "CLOSING",         [CB_TCP_NEW_SYN_RECV] = "NEW_SYN_RECV",
};

static const char *const drain_state_name[CB_ST_COUNT] = {
	[CB_ST_ACTIVE] = "active",
	[CB_ST_STALE] = "stale",
	[CB_ST_DRAINING] = "draining",
	[CB_ST_CLOSED] = "closed",
};

/* Aliases accepted on input, in the normalised spelling (upper case, '_'). */
static const struct {
	const char *alias;
	unsigned int state;
} tcp_alias[] = {
	{ "ESTAB", CB_TCP_ESTABLISHED },     { "SYNSENT", CB_TCP_SYN_SENT },
	{ "SYNRECV", CB_TCP_SYN_RECV },      { "SYN_RCVD", CB_TCP_SYN_RECV },
	{ "FINWAIT1", CB_TCP_FIN_WAIT1 },    { "FIN_WAIT_1", CB_TCP_FIN_WAIT1 },
	{ "FINWAIT2", CB_TCP_FIN_WAIT2 },    { "FIN_WAIT_2", CB_TCP_FIN_WAIT2 },
	{ "TIMEWAIT", CB_TCP_TIME_WAIT },    { "CLOSEWAIT", CB_TCP_CLOSE_WAIT },
	{ "LASTACK", CB_TCP_LAST_ACK },      { "CLOSED", CB_TCP_CLOSE },
};

const char *cb_tcp_state_name(unsigned int state)
{
	return state < CB_TCP_MAX_STATES ? tcp_state_name[state] : NULL;
}

const char *cb_drain_state_name(unsigned int state)
{
	return state < CB_ST_COUNT ? drain_state_name[state] : NULL;
}

/* Upper-case `in` with '-' → '_' into out; false if it does not fit. */
static int normalise(const char *in, char *out, size_t len)
{
	size_t i;

	for (i = 0; in[i]; i++) {
		if (i + 1 >= len)
			return -EINVAL;
		out[i] = in[i] == '-' ? '_' : (char)toupper((unsigned char)in[i]);
	}
	out[i] = '\0';
	return 0;
}

int cb_tcp_state_parse(const char *word, unsigned int *state, char *err, size_t errlen)
{
	char w[24];
	unsigned int s = 0;

	if (word && normalise(word, w, sizeof(w)) == 0) {
		for (unsigned int i = 1; i < CB_TCP_MAX_STATES && !s; i++)
			if (strcmp(w, tcp_state_name[i]) == 0)
				s = i;
		for (size_t i = 0; i < sizeof(tcp_alias) / sizeof(tcp_alias[0]) && !s; i++)
			if (strcmp(w, tcp_alias[i].alias) == 0)
				s = tcp_alias[i].state;
	}
	if (s == CB_TCP_LISTEN || s == CB_TCP_NEW_SYN_RECV) {
		snprintf(err, errlen,
			 "TCP state '%s' is never a connection's state here (listening sockets "
			 "and half-open requests are not sessions)", word);
		return -EINVAL;
	}
	if (!s) {
		snprintf(err, errlen,
			 "unknown TCP state '%s' (use one of established, syn-sent, syn-recv, "
			 "fin-wait1, fin-wait2, time-wait, close, close-wait, last-ack, closing)",
			 word ? word : "");
		return -EINVAL;
	}
	*state = s;
	return 0;
}

int cb_drain_state_parse(const char *word, unsigned int *state, char *err, size_t errlen)
{
	for (unsigned int i = 0; word && i < CB_ST_COUNT; i++) {
		if (strcasecmp(word, drain_state_name[i]) == 0) {
			*state = i;
			return 0;
		}
	}
	snprintf(err, errlen, "unknown state '%s' (use active, stale, draining or closed)",
		 word ? word : "");
	return -EINVAL;
}
