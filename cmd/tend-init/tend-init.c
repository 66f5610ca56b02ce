/*
 * tend-init: the PID 1 tend runs in a container. See package
 * github.com/tendhq/tend/healthcheck/initprobe for what it promises (reaping,
 * signal forwarding, exit status and exit record, probes on a socket, each
 * under a subreaper of its own) and for the engine's side of the protocol.
 *
 * It is C, not Go, for its memory: a host runs one per container, and a Go
 * runtime costs ~0.8 MiB of private memory at rest and several MiB once its
 * heap has grown under probes, where this program keeps ~0.1 MiB.
 * One thread, one poll loop, signals through a signalfd; nothing is
 * allocated per probe beyond the connection's own state, freed at its end.
 *
 * Build static (it runs in images of any kind):
 *   gcc -static -Os -o tend-init cmd/tend-init/tend-init.c
 *
 *   tend-init [--probe-socket PATH] [--exit-record PATH] [--] COMMAND [ARG...]
 *   tend-init --probe-subreaper [--probe-report-fd N] [--] COMMAND [ARG...]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Keep in step with healthcheck/initprobe/doc.go. */
#define MAX_OUTPUT (1 << 20)
#define LEFTOVER_TIMEOUT_MS 5000
#define OUTPUT_GRACE_MS 1000
#define REQUEST_TIMEOUT_MS 30000
#define MAX_REQUEST (1 << 20)
#define MAX_KILL_ROUNDS 64

static void say_err(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n = snprintf(buf, sizeof buf, "tend-init: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	(void)!write(2, buf, n);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int status_code(int ws)
{
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return WEXITSTATUS(ws);
}

/* ---- lookpath: exec.LookPath's rules ------------------------------------ */

static int is_exec(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

/* lookpath finds name as a shell would; on failure it fills err. */
static int lookpath(const char *name, char *out, size_t outsz, char *err, size_t errsz)
{
	if (strchr(name, '/')) {
		if (is_exec(name) && strlen(name) < outsz) {
			strcpy(out, name);
			return 0;
		}
		snprintf(err, errsz, "exec: \"%s\": %s", name, strerror(errno ? errno : EACCES));
		return -1;
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "";
	while (*name) {
		const char *end = strchrnul(path, ':');
		size_t dl = end - path;
		if (dl == 0) {
			dl = 1;
			path = ".";
		}
		if (dl + 1 + strlen(name) < outsz) {
			memcpy(out, path, dl);
			out[dl] = '/';
			strcpy(out + dl + 1, name);
			if (is_exec(out))
				return 0;
		}
		if (!*end)
			break;
		path = end + 1;
	}
	snprintf(err, errsz, "exec: \"%s\": executable file not found in $PATH", name);
	return -1;
}

/* ---- signals --------------------------------------------------------------- */

static sigset_t all_sigs, old_mask;

static void no_op(int sig) { (void)sig; }

/* block_signals blocks every signal (read through a signalfd) and gives the
 * catchable ones a handler: PID 1 never gets a signal it has no handler for
 * from inside its namespace. Exec resets handlers; children unblock. */
static void block_signals(void)
{
	sigfillset(&all_sigs);
	sigprocmask(SIG_SETMASK, &all_sigs, &old_mask);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = no_op;
	for (int s = 1; s < NSIG; s++) {
		if (s == SIGKILL || s == SIGSTOP || s == SIGCHLD)
			continue;
		sigaction(s, &sa, NULL);
	}
}

/* child_prepare runs in a forked child before exec: default dispositions
 * (exec resets handled ones; SIG_IGN would survive) and the mask we had. */
static void child_prepare(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* spawn forks and execs path with argv; setup runs in the child first. The
 * exec's error comes back through a close-on-exec pipe, as Go's ForkExec
 * does, so a command that cannot start is an error here, not a 127 later. */
static pid_t spawn(const char *path, char *const argv[], void (*setup)(void *), void *arg, int *errp)
{
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0) {
		*errp = errno;
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		*errp = errno;
		close(ep[0]);
		close(ep[1]);
		return -1;
	}
	if (pid == 0) {
		close(ep[0]);
		if (setup)
			setup(arg);
		child_prepare();
		execve(path, argv, environ);
		int e = errno;
		(void)!write(ep[1], &e, sizeof e);
		_exit(127);
	}
	close(ep[1]);
	int e = 0;
	ssize_t n;
	do
		n = read(ep[0], &e, sizeof e);
	while (n < 0 && errno == EINTR);
	close(ep[0]);
	if (n == sizeof e) {
		int ws;
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
			;
		*errp = e;
		return -1;
	}
	return pid;
}

/* ---- /proc walks (internal/proctree's, for the inside of a container) ---- */

struct proc {
	int pid, ppid, sid;
	char zombie, mark, stopped;
};

struct procs {
	struct proc *p;
	size_t n, cap;
};

static int read_stat(int pid, struct proc *out)
{
	char path[32], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *r = strrchr(buf, ')');
	if (!r)
		return -1;
	char state;
	int ppid, pgid, sid;
	if (sscanf(r + 1, " %c %d %d %d", &state, &ppid, &pgid, &sid) != 4)
		return -1;
	out->pid = pid;
	out->ppid = ppid;
	out->sid = sid;
	out->zombie = state == 'Z' || state == 'X';
	out->mark = 0;
	return 0;
}

static int scan_procs(struct procs *ps)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	ps->n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		if (ps->n == ps->cap) {
			size_t cap = ps->cap ? 2 * ps->cap : 64;
			struct proc *np = realloc(ps->p, cap * sizeof *np);
			if (!np)
				break;
			ps->p = np;
			ps->cap = cap;
		}
		if (read_stat(atoi(e->d_name), &ps->p[ps->n]) == 0)
			ps->n++;
	}
	closedir(d);
	return 0;
}

/* mark_below marks the live descendants of every marked process. */
static void mark_below(struct procs *ps)
{
	for (int changed = 1; changed;) {
		changed = 0;
		for (size_t i = 0; i < ps->n; i++) {
			if (ps->p[i].mark || ps->p[i].zombie)
				continue;
			for (size_t j = 0; j < ps->n; j++) {
				if (ps->p[j].mark && ps->p[j].pid == ps->p[i].ppid) {
					ps->p[i].mark = changed = 1;
					break;
				}
			}
		}
	}
}

struct pidset {
	int *p;
	size_t n, cap;
};

static int pidset_has(struct pidset *s, int pid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->p[i] == pid)
			return 1;
	return 0;
}

static void pidset_add(struct pidset *s, int pid)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		int *np = realloc(s->p, cap * sizeof *np);
		if (!np)
			return;
		s->p = np;
		s->cap = cap;
	}
	s->p[s->n++] = pid;
}

/* kill_selected stops (SIGSTOP) what select marks until a scan finds nothing
 * new, so nothing forks any more, then SIGKILLs all it stopped. self > 0
 * selects the descendants of self; sid > 0 the live members of session sid
 * and their descendants. It returns the session's size (zombies included)
 * at the last scan, for sid. */
static int kill_selected(int self, int sid)
{
	struct procs ps = {0};
	struct pidset stopped = {0};
	int size = 0;
	for (int round = 0; round < MAX_KILL_ROUNDS; round++) {
		if (scan_procs(&ps) < 0)
			break;
		size = 0;
		for (size_t i = 0; i < ps.n; i++) {
			struct proc *p = &ps.p[i];
			if (sid > 0 && p->sid == sid)
				size++;
			p->mark = (self > 0 && p->pid == self) || (sid > 0 && p->sid == sid && !p->zombie);
		}
		mark_below(&ps);
		int found = 0;
		for (size_t i = 0; i < ps.n; i++) {
			struct proc *p = &ps.p[i];
			if (!p->mark || p->pid == self || p->zombie || pidset_has(&stopped, p->pid))
				continue;
			pidset_add(&stopped, p->pid);
			if (kill(p->pid, SIGSTOP) == 0)
				found = 1;
		}
		if (!found)
			break;
	}
	for (size_t i = 0; i < stopped.n; i++)
		kill(stopped.p[i], SIGKILL);
	free(stopped.p);
	free(ps.p);
	return size;
}

/* ---- exit record ------------------------------------------------------------ */

/* write_exit_record writes {"code":N,"exited_at":RFC3339} atomically and
 * synced, as initprobe.WriteExitRecord does. */
static void write_exit_record(const char *path, int code)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char rec[128];
	int n = snprintf(rec, sizeof rec, "{\"code\":%d,\"exited_at\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\"}",
			 code, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
	char tmp[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int dl = slash ? (int)(slash - path) + 1 : 0;
	if (snprintf(tmp, sizeof tmp, "%.*s.%s-XXXXXX", dl, path, base) >= (int)sizeof tmp) {
		say_err("exit record: path too long");
		return;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		say_err("exit record: %s", strerror(errno));
		return;
	}
	int ok = write(fd, rec, n) == n && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		say_err("exit record: %s", strerror(errno));
		unlink(tmp);
	}
}

/* ---- probe mode: a probe's own subreaper ---------------------------------- */

static int report_fd = -1;

static void report(const char *msg)
{
	if (report_fd >= 0) {
		(void)!write(report_fd, msg, strlen(msg));
		close(report_fd);
		report_fd = -1;
	}
}

static int probe_fail(const char *msg)
{
	char buf[1100];
	snprintf(buf, sizeof buf, "!%s", msg);
	report(buf);
	say_err("%s", msg); /* run as an exec, the probe's output shows it */
	return 127;
}

static void probe_child_setup(void *arg)
{
	(void)arg;
	setsid();
}

/* kill_below kills and reaps every process below us: for a subreaper that
 * is everything the probe started, wherever it went. */
static void kill_below(void)
{
	for (;;) {
		int ws;
		pid_t p = waitpid(-1, &ws, WNOHANG);
		if (p > 0 || (p < 0 && errno == EINTR))
			continue;
		if (p < 0)
			return; /* ECHILD: nothing is left */
		kill_selected(getpid(), 0);
		while ((p = waitpid(-1, &ws, 0)) < 0 && errno == EINTR)
			;
		if (p < 0)
			return;
	}
}

static int run_probe(char **argv, int rfd)
{
	if (rfd > 0) {
		report_fd = rfd;
		fcntl(rfd, F_SETFD, FD_CLOEXEC);
	}
	if (!argv[0] || !argv[0][0])
		return probe_fail("no command given");
	char msg[1024];
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		snprintf(msg, sizeof msg, "become the probe's subreaper: %s", strerror(errno));
		return probe_fail(msg);
	}
	/* Before the pid is reported: the server's kill (SIGTERM) must find
	 * it blocked, or it would kill us and orphan the probe to PID 1. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	char path[PATH_MAX];
	if (lookpath(argv[0], path, sizeof path, msg, sizeof msg) < 0)
		return probe_fail(msg);
	int err;
	pid_t pid = spawn(path, argv, probe_child_setup, NULL, &err);
	if (pid < 0) {
		snprintf(msg, sizeof msg, "exec %s: %s", argv[0], strerror(err));
		return probe_fail(msg);
	}
	snprintf(msg, sizeof msg, "%d\n", pid);
	report(msg);
	/* Our copies of the output pipe must not keep it open once the
	 * probe's processes are gone. */
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0) {
		dup3(null, 1, 0);
		dup3(null, 2, 0);
		close(null);
	}
	int code = -1;
	while (code < 0) {
		siginfo_t si;
		int s = sigwaitinfo(&set, &si);
		if (s == SIGTERM) {
			code = 128 + SIGKILL;
		} else if (s == SIGCHLD) {
			int ws;
			pid_t p;
			while ((p = waitpid(-1, &ws, WNOHANG)) > 0 || (p < 0 && errno == EINTR)) {
				if (p == pid) {
					code = status_code(ws);
					break;
				}
			}
		}
	}
	kill_below();
	return code;
}

/* ---- the probe server ------------------------------------------------------- */

enum { S_REQ, S_START, S_RUN, S_CLOSING };

struct conn {
	struct conn *next;
	int fd, state;
	char *in;
	size_t inlen;
	char *out; /* replies not yet written */
	size_t outlen, outoff;
	int pr, rr; /* the probe's output, the subreaper's report */
	char rep[1100];
	size_t replen;
	pid_t sub, pid;
	int sub_reaped, sub_status;
	int limit;
	size_t sent;
	long long dropped;
	int killed, kill_pending, peer_done, out_eof;
	int keep; /* the engine reuses the connection for its next probe */
	int64_t deadline; /* 0: none (an idle kept connection) */
};

static struct conn *conns;
static int listen_fd = -1;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static pid_t main_child;
static int main_reaped, main_status;
static char iobuf[32 * 1024];

static void queue(struct conn *c, const char *s, size_t n)
{
	if (c->fd < 0)
		return;
	char *no = realloc(c->out, c->outlen + n);
	if (!no)
		return;
	c->out = no;
	memcpy(c->out + c->outlen, s, n);
	c->outlen += n;
}

static void queue_json_string(struct conn *c, const char *s)
{
	queue(c, "\"", 1);
	for (; *s; s++) {
		unsigned char ch = *s;
		char esc[8];
		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = ch;
			queue(c, esc, 2);
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(esc, sizeof esc, "\\u%04x", ch);
			queue(c, esc, 6);
		} else {
			queue(c, (char *)&ch, 1);
		}
	}
	queue(c, "\"", 1);
}

static void reply_error(struct conn *c, const char *msg)
{
	queue(c, "{\"error\":", 9);
	queue_json_string(c, msg);
	queue(c, "}\n", 2);
	c->state = S_CLOSING;
}

static void reply_out(struct conn *c, const unsigned char *b, size_t n)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t need = c->outlen + 10 + 4 * ((n + 2) / 3) + 3;
	char *no = realloc(c->out, need);
	if (!no)
		return;
	c->out = no;
	char *o = c->out + c->outlen;
	memcpy(o, "{\"out\":\"", 8);
	o += 8;
	size_t i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = b[i] << 16 | b[i + 1] << 8 | b[i + 2];
		*o++ = tbl[v >> 18];
		*o++ = tbl[(v >> 12) & 63];
		*o++ = tbl[(v >> 6) & 63];
		*o++ = tbl[v & 63];
	}
	if (i < n) {
		uint32_t v = b[i] << 16 | (i + 1 < n ? b[i + 1] << 8 : 0);
		*o++ = tbl[v >> 18];
		*o++ = tbl[(v >> 12) & 63];
		*o++ = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	memcpy(o, "\"}\n", 3);
	o += 3;
	c->outlen = o - c->out;
}

/* ---- the request: {"argv":[...],"limit":N,"kill":B}, as Go's encoding/json
 * writes it. Unknown keys are skipped. */

struct parser {
	const char *s, *end;
};

static void ws(struct parser *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

static int lit(struct parser *p, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(p->end - p->s) < n || memcmp(p->s, w, n))
		return -1;
	p->s += n;
	return 0;
}

static int hex4(const char *s, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char ch = s[i];
		*v <<= 4;
		if (ch >= '0' && ch <= '9')
			*v |= ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			*v |= ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			*v |= ch - 'A' + 10;
		else
			return -1;
	}
	return 0;
}

/* str parses a JSON string into a malloc'd C string (NULL: skip it). A NUL
 * in it is refused: no argv can carry one. */
static int str(struct parser *p, char **out)
{
	ws(p);
	if (p->s >= p->end || *p->s != '"')
		return -1;
	p->s++;
	char *b = out ? malloc(p->end - p->s + 1) : NULL;
	size_t n = 0;
	if (out && !b)
		return -1;
	while (p->s < p->end && *p->s != '"') {
		unsigned char ch = *p->s++;
		if (ch != '\\') {
			if (b)
				b[n++] = ch;
			continue;
		}
		if (p->s >= p->end)
			goto bad;
		ch = *p->s++;
		unsigned cp;
		switch (ch) {
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case '"': case '\\': case '/': cp = ch; break;
		case 'u':
			if (p->end - p->s < 4 || hex4(p->s, &cp) < 0)
				goto bad;
			p->s += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && p->end - p->s >= 6 && p->s[0] == '\\' && p->s[1] == 'u') {
				unsigned lo;
				if (hex4(p->s + 2, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p->s += 6;
				}
			}
			if (cp >= 0xd800 && cp < 0xe000)
				cp = 0xfffd;
			break;
		default:
			goto bad;
		}
		if (cp == 0)
			goto bad;
		if (!b)
			continue;
		if (cp < 0x80) {
			b[n++] = cp;
		} else if (cp < 0x800) {
			b[n++] = 0xc0 | cp >> 6;
			b[n++] = 0x80 | (cp & 63);
		} else if (cp < 0x10000) {
			b[n++] = 0xe0 | cp >> 12;
			b[n++] = 0x80 | ((cp >> 6) & 63);
			b[n++] = 0x80 | (cp & 63);
		} else {
			b[n++] = 0xf0 | cp >> 18;
			b[n++] = 0x80 | ((cp >> 12) & 63);
			b[n++] = 0x80 | ((cp >> 6) & 63);
			b[n++] = 0x80 | (cp & 63);
		}
	}
	if (p->s >= p->end)
		goto bad;
	p->s++;
	if (b) {
		b[n] = 0;
		*out = b;
	}
	return 0;
bad:
	free(b);
	return -1;
}

static int skip_value(struct parser *p, int depth)
{
	ws(p);
	if (p->s >= p->end || depth > 32)
		return -1;
	char ch = *p->s;
	if (ch == '"')
		return str(p, NULL);
	if (ch == '{' || ch == '[') {
		char close = ch == '{' ? '}' : ']';
		p->s++;
		ws(p);
		if (p->s < p->end && *p->s == close) {
			p->s++;
			return 0;
		}
		for (;;) {
			if (ch == '{') {
				if (str(p, NULL) < 0)
					return -1;
				ws(p);
				if (p->s >= p->end || *p->s++ != ':')
					return -1;
			}
			if (skip_value(p, depth + 1) < 0)
				return -1;
			ws(p);
			if (p->s >= p->end)
				return -1;
			if (*p->s == ',') {
				p->s++;
				continue;
			}
			if (*p->s++ != close)
				return -1;
			return 0;
		}
	}
	const char *start = p->s;
	while (p->s < p->end && strchr("+-.0123456789eEtruefalsn", *p->s))
		p->s++;
	return p->s > start ? 0 : -1;
}

struct request {
	char **argv;
	size_t argc;
	long long limit;
	int keep;
};

static void free_request(struct request *r)
{
	for (size_t i = 0; i < r->argc; i++)
		free(r->argv[i]);
	free(r->argv);
}

static int parse_request(const char *s, size_t n, struct request *r)
{
	struct parser p = {s, s + n};
	memset(r, 0, sizeof *r);
	ws(&p);
	if (lit(&p, "{") < 0)
		return -1;
	ws(&p);
	if (lit(&p, "}") == 0)
		return 0;
	for (;;) {
		char *key;
		if (str(&p, &key) < 0)
			return -1;
		ws(&p);
		if (lit(&p, ":") < 0) {
			free(key);
			return -1;
		}
		ws(&p);
		int ok;
		if (!strcmp(key, "argv") && lit(&p, "null") == 0) {
			ok = 1;
		} else if (!strcmp(key, "argv")) {
			ok = lit(&p, "[") == 0;
			ws(&p);
			if (ok && lit(&p, "]") < 0) {
				for (;;) {
					char **na = realloc(r->argv, (r->argc + 2) * sizeof *na);
					if (!na || (r->argv = na, str(&p, &r->argv[r->argc]) < 0)) {
						ok = 0;
						break;
					}
					r->argv[++r->argc] = NULL;
					ws(&p);
					if (lit(&p, ",") == 0)
						continue;
					ok = lit(&p, "]") == 0;
					break;
				}
			}
		} else if (!strcmp(key, "keep")) {
			if (lit(&p, "true") == 0) {
				r->keep = 1;
				ok = 1;
			} else {
				ok = lit(&p, "false") == 0;
			}
		} else if (!strcmp(key, "limit")) {
			char *e;
			r->limit = strtoll(p.s, &e, 10);
			/* A fraction: Go would refuse it too. */
			ok = e > p.s && e <= p.end && (e == p.end || !strchr(".eE", *e));
			if (ok)
				p.s = e;
		} else {
			ok = skip_value(&p, 0) == 0;
		}
		free(key);
		if (!ok)
			return -1;
		ws(&p);
		if (lit(&p, ",") == 0)
			continue;
		return lit(&p, "}");
	}
}

/* ---- connections ------------------------------------------------------------- */

static void conn_free(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->pr >= 0)
		close(c->pr);
	if (c->rr >= 0)
		close(c->rr);
	free(c->in);
	free(c->out);
	free(c);
}

/* allowed admits only the engine: as PID 1, a peer outside our PID
 * namespace (pid 0); otherwise root or our own user. */
static int allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	if (getpid() == 1)
		return cred.pid == 0;
	return cred.uid == 0 || cred.uid == getuid();
}

static int listen_probes(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path) {
		say_err("probe socket %s: path too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (unlink(path) < 0 && errno != ENOENT) {
		say_err("probe socket %s: remove the old one: %s", path, strerror(errno));
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		say_err("probe socket: %s", strerror(errno));
		return -1;
	}
	mode_t old = umask(077);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0 || listen(fd, 128) < 0) {
		say_err("probe socket: %s", strerror(errno));
		close(fd);
		return -1;
	}
	strcpy(sock_path, path);
	return fd;
}

struct sub_setup {
	int devnull, pw, rw;
};

static void sub_child_setup(void *arg)
{
	struct sub_setup *s = arg;
	setsid();
	dup2(s->devnull, 0);
	dup2(s->pw, 1);
	dup2(s->pw, 2);
	dup2(s->rw, 3);
}

/* close_from closes every descriptor from low up. */
static void close_from(int low)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, low, ~0U, 0) == 0)
		return;
#endif
	struct rlimit rl;
	long max = 1024;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = rl.rlim_cur;
	if (max > 65536)
		max = 65536;
	for (int fd = low; fd < max; fd++)
		close(fd);
}

/* fork_subreaper starts the probe's subreaper: probe mode (run_probe) in a
 * child of ours, with what `tend-init --probe-subreaper --probe-report-fd=3`
 * would start with: the output pipe on 1 and 2, the report pipe on 3, no
 * other descriptor of ours (our connections, socket, signalfd), default
 * signal dispositions and an empty mask. Forked without an exec of ours, it
 * costs the probe a fork, not a fork, an exec and a start of this program
 * (BenchmarkProbe's probe-cpu-ms/probe). */
static pid_t fork_subreaper(char **argv, struct sub_setup *ss)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	sub_child_setup(ss);
	close_from(4);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++) {
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	}
	child_prepare();
	_exit(run_probe(argv, 3));
}

static void start_probe(struct conn *c, struct request *r)
{
	char msg[1200], path[PATH_MAX];
	if (!r->argc || !r->argv[0][0]) {
		reply_error(c, "no command given");
		return;
	}
	c->limit = (r->limit <= 0 || r->limit > MAX_OUTPUT) ? MAX_OUTPUT : (int)r->limit;
	/* Checked here too, so that a missing command costs no subreaper. */
	if (lookpath(r->argv[0], path, sizeof path, msg, sizeof msg) < 0) {
		reply_error(c, msg);
		return;
	}
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int po[2] = {-1, -1}, pr[2] = {-1, -1};
	if (devnull < 0 || pipe2(po, O_CLOEXEC) < 0 || pipe2(pr, O_CLOEXEC) < 0) {
		snprintf(msg, sizeof msg, "probe pipes: %s", strerror(errno));
		goto fail;
	}
	/* The probe runs under a subreaper of its own (probe mode), which kills
	 * and reaps everything it started before it exits: orphans never reach
	 * us, or our command. */
	struct sub_setup ss = {devnull, po[1], pr[1]};
	pid_t sub = fork_subreaper(r->argv, &ss);
	if (sub < 0) {
		snprintf(msg, sizeof msg, "start the probe's subreaper: %s", strerror(errno));
		goto fail;
	}
	close(devnull);
	close(po[1]);
	close(pr[1]);
	fcntl(po[0], F_SETFL, O_NONBLOCK);
	fcntl(pr[0], F_SETFL, O_NONBLOCK);
	c->pr = po[0];
	c->rr = pr[0];
	c->sub = sub;
	c->keep = r->keep;
	c->state = S_START;
	return;
fail:
	if (devnull >= 0)
		close(devnull);
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pr[i] >= 0)
			close(pr[i]);
	}
	reply_error(c, msg);
}

static void reap_all(void);

/* forward_signals passes what the signalfd holds to the command, but
 * SIGCHLD (ours: reap) and SIGPIPE (our own broken connections). */
static void forward_signals(int sfd)
{
	struct signalfd_siginfo si;
	while (read(sfd, &si, sizeof si) == sizeof si) {
		int s = si.ssi_signo;
		if (s == SIGCHLD || s == SIGPIPE)
			continue;
		kill(main_child, s);
	}
}

/* sweep_session kills what is left of session sid (the probe's, whose
 * subreaper was killed: its orphans came to us) and waits, bounded, for the
 * reaper to collect it. */
static void sweep_session(int sid, int sfd)
{
	int64_t deadline = now_ms() + LEFTOVER_TIMEOUT_MS;
	while (kill_selected(0, sid) > 0 && now_ms() < deadline) {
		struct pollfd pf = {.fd = sfd, .events = POLLIN};
		poll(&pf, 1, 50);
		forward_signals(sfd);
		reap_all();
	}
}

static void kill_probe(struct conn *c)
{
	if (c->killed)
		return;
	c->killed = 1;
	if (!c->sub_reaped)
		kill(c->sub, SIGTERM);
}

static void finish(struct conn *c)
{
	char buf[128];
	int code = c->killed ? -1 : status_code(c->sub_status);
	/* Kept (the engine asked, and the probe was not killed: the engine's
	 * kill line may still come) the connection waits for the next request,
	 * with no deadline: the engine closes it when it is done with the
	 * container. The exit line says so. */
	int kept = c->keep && !c->killed && !c->peer_done && c->fd >= 0;
	int n = snprintf(buf, sizeof buf, "{\"exit\":%d%s,\"dropped\":%lld%s}\n", code, c->killed ? ",\"killed\":true" : "", c->dropped,
			 kept ? ",\"kept\":true" : "");
	queue(c, buf, n);
	if (c->pr >= 0)
		close(c->pr);
	c->pr = -1;
	c->state = S_CLOSING;
	if (!kept)
		return;
	if (c->rr >= 0)
		close(c->rr);
	c->rr = -1;
	c->replen = 0;
	c->sub = c->pid = 0;
	c->sub_reaped = c->sub_status = 0;
	c->sent = 0;
	c->dropped = 0;
	c->kill_pending = c->out_eof = c->keep = 0;
	c->deadline = 0;
	c->state = S_REQ;
}

static void reap_all(void)
{
	for (;;) {
		int ws;
		pid_t p = waitpid(-1, &ws, WNOHANG);
		if (p < 0 && errno == EINTR)
			continue;
		if (p <= 0)
			return;
		if (p == main_child) {
			main_reaped = 1;
			main_status = ws;
			continue;
		}
		for (struct conn *c = conns; c; c = c->next) {
			if (c->sub == p && !c->sub_reaped) {
				c->sub_reaped = 1;
				c->sub_status = ws;
				break;
			}
		}
	}
}

/* has_data reports whether b holds anything but white space. */
static int has_data(const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr(" \t\r\n", b[i]))
			return 1;
	return 0;
}

static void on_request_readable(struct conn *c)
{
	char *ni = realloc(c->in, c->inlen + sizeof iobuf);
	if (!ni) {
		c->state = S_CLOSING;
		return;
	}
	c->in = ni;
	ssize_t n = read(c->fd, c->in + c->inlen, sizeof iobuf);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		c->state = S_CLOSING;
		return;
	}
	c->inlen += n;
	char *nl = memchr(c->in, '\n', c->inlen);
	if (!nl) {
		if (c->inlen > MAX_REQUEST)
			c->state = S_CLOSING;
		return;
	}
	struct request r;
	if (parse_request(c->in, nl - c->in, &r) < 0) {
		free_request(&r);
		c->state = S_CLOSING;
		return;
	}
	/* A second line already here (or anything more) asks for a kill. */
	c->kill_pending = has_data(nl + 1, c->in + c->inlen - nl - 1);
	free(c->in);
	c->in = NULL;
	c->inlen = 0;
	start_probe(c, &r);
	free_request(&r);
}

static void on_report(struct conn *c)
{
	ssize_t n = read(c->rr, c->rep + c->replen, sizeof c->rep - 1 - c->replen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		c->replen += n;
		if (c->replen < sizeof c->rep - 1)
			return;
	}
	close(c->rr);
	c->rr = -1;
	c->rep[c->replen] = 0;
	char *end;
	long pid = strtol(c->rep, &end, 10);
	if (c->rep[0] == '!') {
		reply_error(c, c->rep + 1);
		return;
	}
	if (end == c->rep || pid <= 0) {
		char msg[160];
		snprintf(msg, sizeof msg, "the probe's subreaper exited before it started the probe (said \"%.64s\")", c->rep);
		reply_error(c, msg);
		return;
	}
	c->pid = pid;
	char buf[48];
	queue(c, buf, snprintf(buf, sizeof buf, "{\"pid\":%ld}\n", pid));
	c->state = S_RUN;
	if (c->kill_pending)
		kill_probe(c);
}

static void on_output(struct conn *c)
{
	ssize_t n = read(c->pr, iobuf, sizeof iobuf);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The probe's processes are gone, or closed their output:
		 * the exit is reported once the subreaper is reaped too. */
		close(c->pr);
		c->pr = -1;
		c->out_eof = 1;
		return;
	}
	size_t keep = (size_t)n;
	if (keep > c->limit - c->sent)
		keep = c->limit - c->sent;
	if (keep > 0) {
		reply_out(c, (unsigned char *)iobuf, keep);
		c->sent += keep;
	}
	c->dropped += n - keep;
}

/* on_peer: anything more from the engine, or it going away, is a kill. */
static void on_peer(struct conn *c)
{
	ssize_t n = read(c->fd, iobuf, sizeof iobuf);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || has_data(iobuf, n)) {
		c->peer_done = n <= 0;
		kill_probe(c);
	}
}

static void on_writable(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* The engine is gone: drop what is queued. */
			c->outoff = c->outlen = 0;
			close(c->fd);
			c->fd = -1;
			if (c->state == S_RUN)
				kill_probe(c);
			return;
		}
		c->outoff += n;
	}
	c->outoff = c->outlen = 0;
}

/* serve runs the command's loop: signals, reaping, probes. It returns the
 * command's status once it was reaped. */
static int serve(int sfd)
{
	int64_t accept_at = 0, backoff = 0;
	for (;;) {
		reap_all();
		if (main_reaped)
			return status_code(main_status);
		int64_t now = now_ms();
		int timeout = -1;
		size_t nconn = 0;
		for (struct conn *c = conns; c; c = c->next)
			nconn++;
		struct pollfd pfs[2 + 3 * nconn];
		struct conn *owner[2 + 3 * nconn];
		int kind[2 + 3 * nconn];
		int np = 0;
		pfs[np] = (struct pollfd){.fd = sfd, .events = POLLIN};
		owner[np] = NULL;
		kind[np++] = 0;
		if (listen_fd >= 0 && now >= accept_at) {
			pfs[np] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
			owner[np] = NULL;
			kind[np++] = 1;
		} else if (listen_fd >= 0) {
			timeout = accept_at - now;
		}
		for (struct conn **pc = &conns; *pc;) {
			struct conn *c = *pc;
			/* Advance what needs no I/O. */
			if (c->state == S_REQ && c->deadline && c->deadline <= now)
				c->state = S_CLOSING;
			if (c->state == S_RUN && c->sub_reaped && !c->deadline) {
				if (WIFSIGNALED(c->sub_status)) {
					/* Something killed the subreaper itself (the
					 * probe can): its orphans came to us. */
					sweep_session(c->pid, sfd);
				}
				/* Every writer of the pipe is dead by now, unless
				 * the subreaper was killed: then do not wait long. */
				c->deadline = now_ms() + OUTPUT_GRACE_MS;
			}
			if (c->state == S_RUN && c->sub_reaped && (c->out_eof || c->deadline <= now))
				finish(c);
			if (c->state == S_CLOSING && (c->fd < 0 || c->outlen == 0)) {
				/* Only once the subreaper was reaped or never
				 * started: its status must not be lost to a
				 * freed connection (it is dropped then anyway). */
				*pc = c->next;
				conn_free(c);
				continue;
			}
			int64_t dl = c->deadline;
			if (dl && (c->state == S_REQ || c->state == S_RUN)) {
				int t = dl > now ? (int)(dl - now) : 0;
				if (timeout < 0 || t < timeout)
					timeout = t;
			}
			if (c->fd >= 0) {
				short ev = 0;
				if (c->state == S_REQ || (c->state == S_RUN && !c->killed && !c->peer_done))
					ev |= POLLIN;
				if (c->outlen)
					ev |= POLLOUT;
				if (ev) {
					pfs[np] = (struct pollfd){.fd = c->fd, .events = ev};
					owner[np] = c;
					kind[np++] = 2;
				}
			}
			if (c->state == S_START && c->rr >= 0) {
				pfs[np] = (struct pollfd){.fd = c->rr, .events = POLLIN};
				owner[np] = c;
				kind[np++] = 3;
			}
			if (c->state == S_RUN && c->pr >= 0) {
				pfs[np] = (struct pollfd){.fd = c->pr, .events = POLLIN};
				owner[np] = c;
				kind[np++] = 4;
			}
			pc = &c->next;
		}
		int n = poll(pfs, np, timeout);
		if (n < 0 && errno != EINTR) {
			say_err("poll: %s", strerror(errno));
			return 127;
		}
		for (int i = 0; n > 0 && i < np; i++) {
			if (!pfs[i].revents)
				continue;
			struct conn *c = owner[i];
			switch (kind[i]) {
			case 0:
				forward_signals(sfd);
				reap_all();
				break;
			case 1: {
				int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
				if (fd < 0) {
					if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
						break;
					/* Out of fds or memory, for now: back off as
					 * net/http does, and say so once. */
					if (!backoff) {
						say_err("probe socket: %s; retrying", strerror(errno));
						backoff = 5;
					} else {
						backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
					}
					accept_at = now_ms() + backoff;
					break;
				}
				backoff = 0;
				if (!allowed(fd)) {
					close(fd);
					break;
				}
				struct conn *nc = calloc(1, sizeof *nc);
				if (!nc) {
					close(fd);
					break;
				}
				nc->fd = fd;
				nc->pr = nc->rr = -1;
				nc->deadline = now_ms() + REQUEST_TIMEOUT_MS;
				nc->next = conns;
				conns = nc;
				break;
			}
			case 2:
				if (pfs[i].revents & POLLOUT || (pfs[i].revents & (POLLERR | POLLHUP) && c->outlen))
					on_writable(c);
				if (c->fd < 0)
					break;
				if (pfs[i].revents & (POLLIN | POLLHUP | POLLERR)) {
					if (c->state == S_REQ) {
						on_request_readable(c);
						if (c->state == S_START)
							c->deadline = 0;
					} else if (c->state == S_RUN) {
						on_peer(c);
					}
				}
				break;
			case 3:
				if (c->state == S_START)
					on_report(c);
				break;
			case 4:
				if (c->state == S_RUN && c->pr >= 0)
					on_output(c);
				break;
			}
		}
	}
}

static void command_child_setup(void *arg)
{
	int tty = *(int *)arg;
	setpgid(0, 0);
	/* Keep the terminal's foreground group the command's, so that ^C
	 * reaches it once (not it and us). SIGTTOU is still blocked here. */
	if (tty)
		tcsetpgrp(0, getpid());
}

static int run(char **argv, const char *socket)
{
	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		say_err("become a subreaper: %s", strerror(errno));
		return 127;
	}
	block_signals();
	int sfd = signalfd(-1, &all_sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		say_err("signalfd: %s", strerror(errno));
		return 127;
	}
	char path[PATH_MAX], msg[1024];
	if (lookpath(argv[0], path, sizeof path, msg, sizeof msg) < 0) {
		say_err("start \"%s\": %s", argv[0], msg);
		return 127;
	}
	struct termios t;
	int tty = tcgetattr(0, &t) == 0;
	int err;
	main_child = spawn(path, argv, command_child_setup, &tty, &err);
	if (main_child < 0) {
		say_err("start \"%s\": %s", argv[0], strerror(err));
		return 127;
	}
	if (socket && *socket) {
		/* Without it probes run the slow way (the engine falls back to
		 * an exec): not a reason to fail the container. */
		listen_fd = listen_probes(socket);
	}
	int code = serve(sfd);
	if (listen_fd >= 0) {
		unlink(sock_path);
		close(listen_fd);
	}
	return code;
}

static void usage(void)
{
	static const char u[] =
		"usage: tend-init [--probe-socket PATH] [--exit-record PATH] [--] COMMAND [ARG...]\n"
		"  -exit-record string\n\twrite the command's exit status and time to this file before exiting\n"
		"  -probe-socket string\n\tserve health probes on this unix socket\n"
		"  -probe-subreaper\n\trun COMMAND as a health probe under a subreaper of its own\n"
		"  -probe-report-fd int\n\twith --probe-subreaper: report the probe's pid on this fd\n";
	(void)!write(2, u, sizeof u - 1);
}

/* flag matches arg against -name/--name[=value] as Go's flag package does;
 * a value flag takes the next argument when it has no "=". */
static int flag(char ***args, const char *name, int has_value, const char **value)
{
	const char *a = **args;
	if (a[0] != '-')
		return 0;
	a += a[1] == '-' ? 2 : 1;
	size_t n = strlen(name);
	if (strncmp(a, name, n) || (a[n] && a[n] != '='))
		return 0;
	if (!has_value) {
		*value = a[n] == '=' ? a + n + 1 : "true";
		return 1;
	}
	if (a[n] == '=') {
		*value = a + n + 1;
		return 1;
	}
	if (!(*args)[1])
		return -1;
	(*args)++;
	*value = **args;
	return 1;
}

int main(int argc, char **argv)
{
	(void)argc;
	const char *socket = NULL, *record = NULL, *v;
	int probe = 0, rfd = 0;
	char **a = argv + 1;
	for (; *a; a++) {
		if (!strcmp(*a, "--") || !strcmp(*a, "-")) {
			a += !strcmp(*a, "--");
			break;
		}
		if ((*a)[0] != '-')
			break;
		int r;
		if ((r = flag(&a, "probe-socket", 1, &v)) == 1)
			socket = v;
		else if (r == 0 && (r = flag(&a, "exit-record", 1, &v)) == 1)
			record = v;
		else if (r == 0 && (r = flag(&a, "probe-subreaper", 0, &v)) == 1)
			probe = !strcmp(v, "true") || !strcmp(v, "1");
		else if (r == 0 && (r = flag(&a, "probe-report-fd", 1, &v)) == 1)
			rfd = atoi(v);
		if (r != 1) {
			say_err("flag provided but not defined or missing its value: %s", *a);
			usage();
			return 127;
		}
	}
	if (probe)
		return run_probe(a, rfd);
	if (!*a) {
		usage();
		return 127;
	}
	int code = run(a, socket);
	if (record && *record) {
		/* Before the exit: once PID 1 is gone the container is, and
		 * containerd may lose the status (it is down, say). */
		write_exit_record(record, code);
	}
	return code;
}
