// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* output.c — see output.h. */
#include "cli/output.h"

#include <inttypes.h>
#include <string.h>

/*
 * The JSON path writes a million rows in well under a second: a row is
 * built in the printer's own buffer with plain memory copies (a row is ~35
 * fields: one stdio call each cost more than the rest of the row), numbers
 * are formatted by hand instead of through printf, runs of plain characters
 * in a string are copied at once, and the buffer goes out in large writes.
 */
static bool is_json(const struct cb_out *o)
{
	return o->mode == CB_OUT_JSON || o->mode == CB_OUT_JSON_LINES;
}

static void jflush(struct cb_out *o)
{
	if (o->jlen)
		fwrite_unlocked(o->jbuf, 1, o->jlen, o->f);
	o->jlen = 0;
}

static void jput(struct cb_out *o, const void *p, size_t n)
{
	if (o->jlen + n > sizeof(o->jbuf)) {
		jflush(o);
		if (n > sizeof(o->jbuf)) {
			fwrite_unlocked(p, 1, n, o->f);
			return;
		}
	}
	memcpy(o->jbuf + o->jlen, p, n);
	o->jlen += n;
}

static void jputc(struct cb_out *o, char c)
{
	if (o->jlen == sizeof(o->jbuf))
		jflush(o);
	o->jbuf[o->jlen++] = c;
}

static void jput_str(struct cb_out *o, const char *s)
{
	jput(o, s, strlen(s));
}

static void jput_u64(struct cb_out *o, uint64_t v)
{
	char buf[20];
	int i = sizeof(buf);

	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	jput(o, buf + i, sizeof(buf) - i);
}

/* `s` as a JSON string literal into `put` (a FILE or the row buffer). */
static void json_string(const char *s, void (*put)(void *to, const void *p, size_t n), void *to)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;

	put(to, "\"", 1);
	for (; *p; p++) {
		const char *esc = NULL;
		char u[6];

		switch (*p) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\t': esc = "\\t"; break;
		case '\r': esc = "\\r"; break;
		default:
			/* process names are arbitrary bytes: control characters
			 * and non-ASCII bytes are escaped so the output is always
			 * valid JSON (bytes >= 0x80 as U+0080..U+00FF) */
			if (*p >= 0x20 && *p < 0x7f)
				continue;
		}
		put(to, run, p - run);
		run = p + 1;
		if (esc) {
			put(to, esc, 2);
			continue;
		}
		memcpy(u, "\\u00", 4);
		u[4] = hex[*p >> 4];
		u[5] = hex[*p & 15];
		put(to, u, sizeof(u));
	}
	put(to, run, p - run);
	put(to, "\"", 1);
}

static void put_file(void *f, const void *p, size_t n)
{
	fwrite_unlocked(p, 1, n, f);
}

static void put_row(void *o, const void *p, size_t n)
{
	jput(o, p, n);
}

void cb_json_string(FILE *f, const char *s)
{
	json_string(s, put_file, f);
}

void cb_out_begin(struct cb_out *o, FILE *f, enum cb_out_mode mode, const struct cb_col *cols,
		  int ncols, bool header)
{
	memset(o, 0, sizeof(*o));
	o->f = f;
	o->mode = mode;
	o->cols = cols;
	o->ncols = ncols;
	o->header = header;
	o->first_row = true;
	if (mode == CB_OUT_JSON) {
		fputc('[', f);
		return;
	}
	if (mode == CB_OUT_JSON_LINES)
		return;
	if (!header)
		return;
	for (int i = 0; i < ncols; i++) {
		int w = cols[i].width;

		if (i == ncols - 1 && cols[i].align == CB_COL_LEFT)
			fprintf(f, "%s", cols[i].header);
		else if (cols[i].align == CB_COL_RIGHT)
			fprintf(f, "%*s", w, cols[i].header);
		else
			fprintf(f, "%-*s", w, cols[i].header);
		if (i < ncols - 1)
			fputc(' ', f);
	}
	fputc('\n', f);
}

void cb_out_row_begin(struct cb_out *o)
{
	o->col = 0;
	o->first_field = true;
	if (o->mode == CB_OUT_JSON) {
		jput_str(o, o->first_row ? "\n{" : ",\n{");
		o->first_row = false;
	} else if (o->mode == CB_OUT_JSON_LINES) {
		jputc(o, '{');
	}
}

/* Keys are our own identifiers: nothing to escape. */
static void json_key(struct cb_out *o, const char *key)
{
	if (!o->first_field)
		jputc(o, ',');
	o->first_field = false;
	jputc(o, '"');
	jput_str(o, key);
	jput(o, "\":", 2);
}

static void text_cell(struct cb_out *o, const char *text)
{
	const struct cb_col *c;

	if (o->col >= o->ncols)
		return;
	c = &o->cols[o->col];
	if (o->col == o->ncols - 1 && c->align == CB_COL_LEFT)
		fputs(text, o->f); /* no trailing blanks on the last column */
	else if (c->align == CB_COL_RIGHT)
		fprintf(o->f, "%*s", c->width, text);
	else
		fprintf(o->f, "%-*s", c->width, text);
	if (o->col < o->ncols - 1)
		fputc(' ', o->f);
	o->col++;
}

void cb_out_str(struct cb_out *o, const char *key, const char *value, const char *text)
{
	if (is_json(o)) {
		if (!key)
			return;
		json_key(o, key);
		json_string(value, put_row, o);
	} else if (text || value) {
		text_cell(o, text ? text : value);
	}
}

void cb_out_u64(struct cb_out *o, const char *key, uint64_t value, const char *text)
{
	char buf[24];

	if (is_json(o)) {
		if (!key)
			return;
		json_key(o, key);
		jput_u64(o, value);
		return;
	}
	if (!text) {
		snprintf(buf, sizeof(buf), "%" PRIu64, value);
		text = buf;
	}
	text_cell(o, text);
}

void cb_out_json_u64(struct cb_out *o, const char *key, uint64_t value)
{
	if (!is_json(o))
		return;
	json_key(o, key);
	jput_u64(o, value);
}

void cb_out_json_str(struct cb_out *o, const char *key, const char *value)
{
	if (!is_json(o))
		return;
	json_key(o, key);
	json_string(value, put_row, o);
}

void cb_out_json_null(struct cb_out *o, const char *key)
{
	if (!is_json(o))
		return;
	json_key(o, key);
	jput(o, "null", 4);
}

void cb_out_json_bool(struct cb_out *o, const char *key, bool value)
{
	if (!is_json(o))
		return;
	json_key(o, key);
	jput_str(o, value ? "true" : "false");
}

void cb_out_row_end(struct cb_out *o)
{
	o->rows++;
	if (!is_json(o)) {
		putc_unlocked('\n', o->f);
		return;
	}
	jputc(o, '}');
	if (o->mode == CB_OUT_JSON_LINES)
		jputc(o, '\n');
	/* whole rows go out, in blocks: a reader of a pipe sees complete
	 * objects, never half of one, once the buffer is nearly full */
	if (o->jlen > sizeof(o->jbuf) - 4096)
		jflush(o);
}

void cb_out_flush(struct cb_out *o)
{
	jflush(o);
	fflush(o->f);
}

void cb_out_end(struct cb_out *o)
{
	jflush(o);
	if (o->mode == CB_OUT_JSON)
		fputs(o->first_row ? "]\n" : "\n]\n", o->f);
	fflush(o->f);
}
