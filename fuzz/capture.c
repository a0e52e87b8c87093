/*
 * Capture tool: runs the harness script (every ts_* call, see harness.c)
 * against a real host -- the simulator, through smbd -- and writes what the
 * server answered as seeds for the fuzz targets:
 *
 *   OUT/tsts_client/LABEL          the whole conversation (harness_client)
 *   OUT/rpc_sealed|rpc_stream/...  each pipe's bytes (harness_engine)
 *   OUT/rpc_pdu/...                the bind answer and first response PDU
 *   OUT/tsts_parse/...             each response stub a parser reads
 *   OUT/ntlm_challenge/...         the CHALLENGE of each sealed bind
 *
 * It links the real core (the objects of src/, libsmbclient) and plugs a
 * recording transport into ts_opts.transport: libsmbclient's pipes
 * (smb_transport_connect) with every open outcome and every byte read
 * written down. NTLM runs in test mode (ts_opts.ntlm_fixed = harness_ntlm),
 * so that sealed captures replay in memory. The response stubs are taken
 * from each pipe's recording once it closes: its bytes replayed through
 * the DCE/RPC engine (NTLM in the same test mode), one call for each
 * request the client wrote, whose context and opnum the recorder noted
 * from the request header (clear text even when sealed).
 *
 *   capture --host H --port P --user U --domain D --auth privacy|none
 *           --label NAME --out DIR [--expect FILE]
 * The password comes from $TERMSRV_CAPTURE_PASSWORD, never from the
 * command line. --expect appends one line "LABEL step=code ..." (code "ok"
 * on success) that the replay spec compares with the in-memory run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "smbpipe.h"
#include "transport.h"

#define MAX_OPEN 8
#define MAX_CALLS 256

typedef struct buf {
	uint8_t *p;
	size_t len, cap;
} buf;

static void buf_add(buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *q = realloc(b->p, cap);
		if (!q) {
			perror("capture");
			exit(1);
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static struct {
	const char *out, *label;
	int sealed;
	buf all;                 /* the conversation, as the memory transport reads it back */
	ts_transport smb;        /* the real transport under the recording one */
	struct {
		void *pipe;
		char name[64];
		buf bytes;
		int ncalls;
		uint16_t ctx[MAX_CALLS], opnum[MAX_CALLS];
	} open[MAX_OPEN];
	int pipe_seq;
	int parser_seen[HP_COUNT];
} cap;

static void write_seed(const char *dir, const char *name, int cfg, const uint8_t *p, size_t n)
{
	char path[1024];
	(void)snprintf(path, sizeof path, "%s/%s", cap.out, dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	(void)snprintf(path, sizeof path, "%s/%s/%s", cap.out, dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || (cfg >= 0 && fputc(cfg, f) == EOF) || (n && fwrite(p, 1, n, f) != n) ||
	    fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static const char *short_name(const char *pipe)
{
	return strcmp(pipe, "LSM_API_service") == 0 ? "lsm"
	       : strcmp(pipe, "TermSrv_API_service") == 0 ? "rcm" : "legacy";
}

/* The stub of every successful call of pipe i, by replaying its bytes:
 * the first stub each parser reads becomes a tsts_parse seed. */
static void record_stubs(int i)
{
	const char *name = cap.open[i].name;
	const rpc_iface *ifaces[RPC_MAX_CTX] = {&IF_LEGACY};
	int nif = 1;
	if (strcmp(name, "LSM_API_service") == 0) {
		ifaces[0] = &IF_TSENUM;
		ifaces[1] = &IF_TSSESSION;
		nif = 2;
	} else if (strcmp(name, "TermSrv_API_service") == 0) {
		ifaces[0] = &IF_RCMPUBLIC;
	}
	mem_stream s = {cap.open[i].bytes.p, cap.open[i].bytes.len, 0};
	rpc_io io = {&s, mem_stream_write, mem_stream_read};
	rpc_conn c;
	rpc_sec sec;
	ntlm_ctx nt;
	memset(&nt, 0, sizeof nt);
	rpc_init(&c, io, name, 0, NULL);
	if (cap.sealed) {
		if (ntlm_init(&nt, "capture", "CAPTURE", "CAPTURE", "-", NULL) != NTLM_OK)
			abort();
		ntlm_fix(&nt, &harness_ntlm);
		rpc_sec_ntlm(&sec, &nt);
		c.sec = &sec;
	}
	ts_err e = {0};
	wbuf out;
	wb_init(&out);
	static const uint8_t stub[8];
	if (rpc_bind(&c, ifaces, nif, &e) == 0) {
		for (int k = 0; k < cap.open[i].ncalls && !c.broken; k++) {
			int ctx = cap.open[i].ctx[k] < nif ? cap.open[i].ctx[k] : 0;
			unsigned opnum = cap.open[i].opnum[k];
			memset(&e, 0, sizeof e);
			int which = harness_parser_for(name, ctx, opnum);
			if (rpc_call(&c, ctx, (uint16_t)opnum, stub, sizeof stub, &out, &e) == 0 &&
			    which >= 0 && !cap.parser_seen[which]) {
				char seed[256];
				cap.parser_seen[which] = 1;
				(void)snprintf(seed, sizeof seed, "%s-%s", cap.label,
					       harness_parser_names[which]);
				write_seed("tsts_parse", seed, which, out.p, out.len);
			}
		}
	}
	wb_free(&out);
	ntlm_wipe(&nt);
}

/* One pipe's bytes: an engine seed, and its first two PDUs for rpc_pdu. */
static void flush_pipe(int i)
{
	buf *b = &cap.open[i].bytes;
	const char *pipe = short_name(cap.open[i].name);
	char name[256];
	int seq = ++cap.pipe_seq;
	if (b->len >= 16) {
		int nctx = strcmp(pipe, "lsm") == 0 ? 2 : 1;
		(void)snprintf(name, sizeof name, "%s-%02d-%s", cap.label, seq, pipe);
		write_seed(cap.sealed ? "rpc_sealed" : "rpc_stream", name, nctx - 1, b->p, b->len);
		/* the server's NTLM CHALLENGE, from the bind answer */
		rpc_bind_ack ack;
		ts_err e = {0};
		size_t first = (size_t)(b->p[8] | b->p[9] << 8);
		if (cap.sealed && first <= b->len && rpc_parse_bind_ack(b->p, first, &ack, &e) == 0 &&
		    ack.auth_token) {
			(void)snprintf(name, sizeof name, "%s-%02d-%s", cap.label, seq, pipe);
			write_seed("ntlm_challenge", name, -1, ack.auth_token, ack.auth_len);
		}
		size_t off = 0;
		for (int k = 0; k < 2 && off + 16 <= b->len; k++) {
			size_t flen = (size_t)(b->p[off + 8] | b->p[off + 9] << 8);
			if (flen < 16 || off + flen > b->len)
				break;
			(void)snprintf(name, sizeof name, "%s-%02d-%s-%s", cap.label, seq, pipe,
				       k == 0 ? "bind" : "response");
			write_seed("rpc_pdu", name, -1, b->p + off, flen);
			off += flen;
		}
	}
	record_stubs(i);
	free(b->p);
	memset(&cap.open[i], 0, sizeof cap.open[i]);
}

/* ---- the recording transport ------------------------------------------------- */

static void *rec_open(void *conn, const char *name, ts_err *e)
{
	(void)conn;
	void *p = cap.smb.ops->open(cap.smb.conn, name, e);
	uint8_t outcome = MEM_OPEN_OK;
	if (!p)
		outcome = e->status == ENOENT ? MEM_OPEN_ENOENT
			: e->status == EACCES ? MEM_OPEN_EACCES : MEM_OPEN_OTHER;
	buf_add(&cap.all, &outcome, 1);
	if (p) {
		int i = 0;
		while (i < MAX_OPEN && cap.open[i].pipe)
			i++;
		if (i == MAX_OPEN) {
			fprintf(stderr, "capture: too many open pipes\n");
			exit(1);
		}
		cap.open[i].pipe = p;
		(void)snprintf(cap.open[i].name, sizeof cap.open[i].name, "%s", name);
	}
	return p;
}

static int rec_write(void *pipe, const uint8_t *p, size_t n, ts_err *e)
{
	/* the context and opnum of each request, for record_stubs */
	for (int i = 0; i < MAX_OPEN && n >= 24 && p[2] == PT_REQUEST && (p[3] & PFC_FIRST_FRAG); i++)
		if (cap.open[i].pipe == pipe && cap.open[i].ncalls < MAX_CALLS) {
			int k = cap.open[i].ncalls++;
			cap.open[i].ctx[k] = ld16(p + 20);
			cap.open[i].opnum[k] = ld16(p + 22);
		}
	return cap.smb.ops->write(pipe, p, n, e);
}

static int rec_read(void *pipe, uint8_t *p, size_t n, ts_err *e)
{
	int rc = cap.smb.ops->read(pipe, p, n, e);
	if (rc < 0) {
		/* the memory transport can only fail a read at the end of its
		 * stream: a capture with a transport failure in the middle would
		 * not replay */
		fprintf(stderr, "capture: a read failed on %s; this scenario cannot be captured\n",
			cap.label);
		exit(3);
	}
	buf_add(&cap.all, p, n);
	for (int i = 0; i < MAX_OPEN; i++)
		if (cap.open[i].pipe == pipe)
			buf_add(&cap.open[i].bytes, p, n);
	return rc;
}

static int rec_dead(const void *pipe) { return cap.smb.ops->dead(pipe); }

static void rec_close(void *pipe)
{
	for (int i = 0; i < MAX_OPEN; i++)
		if (pipe && cap.open[i].pipe == pipe)
			flush_pipe(i);
	cap.smb.ops->close(pipe);
}

static void rec_drop(void *conn)
{
	(void)conn;
	cap.smb.ops->drop(cap.smb.conn);
}

static void rec_free(void *conn)
{
	(void)conn;
	cap.smb.ops->free(cap.smb.conn);
}

static const ts_transport_ops rec_ops = {rec_open, rec_write, rec_read, rec_dead,
					 rec_close, rec_drop, rec_free};

static int rec_connect(void *arg, const smb_opts *o, smb_stats *stats, ts_transport *out,
		       ts_err *e)
{
	(void)arg;
	if (smb_transport_connect(NULL, o, stats, &cap.smb, e) < 0)
		return -1;
	out->ops = &rec_ops;
	out->conn = cap.smb.conn;
	return 0;
}

/* ---- main -------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: capture --host H --port P --user U --domain D --auth privacy|none "
			"--label NAME --out DIR [--expect FILE]\n"
			"       (password in $TERMSRV_CAPTURE_PASSWORD)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	ts_opts o;
	const char *expect = NULL, *auth = "privacy";
	memset(&o, 0, sizeof o);
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		if (strcmp(argv[i], "--host") == 0)
			o.smb.host = v;
		else if (strcmp(argv[i], "--port") == 0)
			o.smb.port = atoi(v);
		else if (strcmp(argv[i], "--user") == 0)
			o.smb.user = v;
		else if (strcmp(argv[i], "--domain") == 0)
			o.smb.domain = v;
		else if (strcmp(argv[i], "--auth") == 0)
			auth = v;
		else if (strcmp(argv[i], "--label") == 0)
			cap.label = v;
		else if (strcmp(argv[i], "--out") == 0)
			cap.out = v;
		else if (strcmp(argv[i], "--expect") == 0)
			expect = v;
		else
			usage();
		i++;
	}
	o.smb.secret = getenv("TERMSRV_CAPTURE_PASSWORD");
	if (!o.smb.host || !o.smb.user || !cap.label || !cap.out || !o.smb.secret)
		usage();
	o.smb.domain = o.smb.domain ? o.smb.domain : "";
	o.smb.timeout_ms = 5000;
	o.rpc_auth = strcmp(auth, "none") != 0;
	cap.sealed = o.rpc_auth;
	ts_connector recording = {rec_connect, NULL};
	o.transport = &recording;
	o.ntlm_fixed = &harness_ntlm;

	uint8_t cfg = (uint8_t)o.rpc_auth;
	buf_add(&cap.all, &cfg, 1);
	harness_result r;
	memset(&r, 0, sizeof r);
	ts_err e = {0};
	ts_conn *c = ts_open(&o, &e);
	harness_record(&r, "open", c ? 0 : -1, &e);
	if (c) {
		harness_script(c, &r);
		ts_close(c);
	}
	write_seed("tsts_client", cap.label, -1, cap.all.p, cap.all.len);
	free(cap.all.p);

	if (expect) {
		FILE *f = fopen(expect, "a");
		if (!f) {
			perror(expect);
			return 1;
		}
		fprintf(f, "%s", cap.label);
		for (int i = 0; i < r.nsteps; i++)
			fprintf(f, " %s=%s", r.step[i].name, r.step[i].code ? r.step[i].code : "ok");
		fprintf(f, "\n");
		if (fclose(f) != 0) {
			perror(expect);
			return 1;
		}
	}
	for (int i = 0; i < r.nsteps; i++)
		printf("%-14s %s\n", r.step[i].name, r.step[i].code ? r.step[i].code : "ok");
	return 0;
}
