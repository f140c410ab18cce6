/*
 * main.c - command line, start-up, daemon life: privileges, pidfile,
 * signals, reload and shutdown (DESIGN.md section 5).
 * Owns: the main thread, which blocks every process signal and waits for
 * them in sigwait() (libmilter's own signal thread would stop the milter
 * on SIGHUP; on Linux a process signal goes to the main thread first when
 * it waits for it), the thread running libmilter's loop, and the metrics
 * listener (metrics_http.h), which only the main thread starts and stops.
 * Errors: start-up problems exit 1 with a message; after start-up nothing
 * a peer sends can stop the process.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "casetest.h"
#include "check.h"
#include "glue.h"
#include "greylist_cli.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "report_cli.h"
#include "snapshot.h"
#include "tag.h"
#include "util.h"

#define DRAIN_WAIT_MS	(10 * 60 * 1000)	/* messages in flight */

/* Command-line values that override the config file, on every reload. */
static struct {
	const char *conf;
	const char *socket;
	const char *user;
	const char *pidfile;
} opt;

static void
usage(FILE *fp)
{
	fputs("usage: portcullis [-c conf] [-p socket] [-f] [-u user] "
	    "[-P pidfile]\n"
	    "       portcullis -n [-c conf]\n"
	    "       portcullis -V\n"
	    "       portcullis check [-c conf] --ip IP [--helo NAME] "
	    "--from ADDR --rcpt ADDR... [--auth USER] [--trace] "
	    "MESSAGE.eml\n"
	    "       portcullis test [-c conf] CASE...|DIR\n"
	    "       portcullis report dmarc [-c conf] --since TIME "
	    "--until TIME [OPTION...]\n", fp);
}

static void
print_diag(const struct diag *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		fprintf(stderr, "%s\n", d->msgs[i]);
}

static void
log_diag(const struct diag *d)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		log_warn("%s", d->msgs[i]);
}

/* Applies command-line overrides to a freshly loaded config. */
static void
apply_overrides(struct config *c)
{
	if (opt.socket != NULL) {
		free(c->socket);
		c->socket = xstrdup(opt.socket);
	}
	if (opt.user != NULL) {
		free(c->user);
		c->user = xstrdup(opt.user);
	}
	if (opt.pidfile != NULL) {
		free(c->pidfile);
		c->pidfile = xstrdup(opt.pidfile);
	}
}

static struct snapshot *
load(struct diag *d)
{
	struct snapshot *s = snapshot_load_daemon(opt.conf, opt.user, d);

	if (s != NULL)
		apply_overrides(s->cfg);
	return s;
}

/*
 * Detaches from the terminal.  The first process waits until the daemon
 * reports that it is listening (daemon_ready()), so that the command
 * returns only once the milter is up, and with a failure status if the
 * daemon died during start-up.
 */
static int ready_fd = -1;

static void
daemonise(void)
{
	int pfd[2], fd;
	pid_t pid;
	char ok;

	if (pipe(pfd) != 0)
		log_fatal("pipe: %s", strerror(errno));
	if ((pid = fork()) < 0)
		log_fatal("fork: %s", strerror(errno));
	if (pid > 0) {
		close(pfd[1]);
		_exit(read(pfd[0], &ok, 1) == 1 ? 0 : 1);
	}
	close(pfd[0]);
	ready_fd = pfd[1];
	if (setsid() < 0)
		log_fatal("setsid: %s", strerror(errno));
	if ((pid = fork()) < 0)
		log_fatal("fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	if (chdir("/") != 0)
		log_fatal("chdir /: %s", strerror(errno));
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		/* stderr stays until start-up is over: fatal errors of the
		 * start show on the terminal */
		if (fd > 2)
			close(fd);
	}
}

static void
daemon_ready(void)
{
	int fd;

	if (ready_fd < 0)
		return;
	if (write(ready_fd, "1", 1) != 1)
		log_warn("cannot report readiness: %s", strerror(errno));
	close(ready_fd);
	ready_fd = -1;
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

static void
write_pidfile(const char *path)
{
	FILE *fp;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd < 0 || (fp = fdopen(fd, "w")) == NULL)
		log_fatal("pidfile %s: %s", path, strerror(errno));
	fprintf(fp, "%ld\n", (long)getpid());
	if (fclose(fp) != 0)
		log_fatal("pidfile %s: %s", path, strerror(errno));
}

static const char *
unix_socket_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	return NULL;
}

/*
 * Opens the socket as the starting user, then becomes the configured user
 * (the socket's group can be the MTA's: mode 0660).
 */
static void
drop_privileges(const struct config *c)
{
	const char *sock = unix_socket_path(c->socket);
	struct passwd *pw;

	if (sock != NULL && chmod(sock, 0660) != 0)
		log_fatal("chmod %s: %s", sock, strerror(errno));
	if (c->user == NULL) {
		if (geteuid() == 0)
			log_warn("running as root: set 'user' in the config "
			    "or use -u");
		return;
	}
	if ((pw = getpwnam(c->user)) == NULL)
		log_fatal("unknown user '%s'", c->user);
	if (sock != NULL && chown(sock, pw->pw_uid, pw->pw_gid) != 0)
		log_fatal("chown %s: %s", sock, strerror(errno));
	if (geteuid() != 0 && geteuid() == pw->pw_uid)
		return;
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
		log_fatal("cannot become user '%s': %s", c->user,
		    strerror(errno));
	if (setuid(0) == 0)
		log_fatal("privileges could be regained after dropping them");
}

/* The metrics listener and the address it serves (NULL: none). */
static struct metrics_http *metrics_srv;
static char *metrics_addr;	/* owns */

static bool
same_addr(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/*
 * At a reload the listener follows the metrics address: the new address
 * is bound first (as the user the daemon now runs as), then the old
 * listener stops.  When the new one cannot be bound (a port only root may
 * use, an address in use) the old listener stays, and the log says that
 * a restart applies the change.
 */
static void
metrics_follow(const char *addr)
{
	struct metrics_http *h = NULL;
	char err[256];
	int fd;

	if (same_addr(addr, metrics_addr))
		return;
	if (addr != NULL) {
		if ((fd = metrics_http_bind(addr, err, sizeof(err))) < 0 ||
		    (h = metrics_http_start(fd, err, sizeof(err))) == NULL) {
			log_warn("metrics: %s; %s %s until a restart", err,
			    metrics_addr != NULL ? "the page stays on" :
			    "no metrics listener", metrics_addr != NULL ?
			    metrics_addr : "");
			return;
		}
	}
	metrics_http_stop(metrics_srv);
	metrics_srv = h;
	free(metrics_addr);
	metrics_addr = addr != NULL ? xstrdup(addr) : NULL;
	if (addr != NULL)
		log_info("metrics on http://%s/metrics", addr);
	else
		log_info("metrics listener stopped");
}

static void *
milter_thread(void *arg)
{
	int *rc = arg;

	*rc = glue_run();
	return NULL;
}

static void
reload_failed(struct snapshot *s, struct diag *d)
{
	log_diag(d);
	log_err("reload failed; the previous configuration and "
	    "policy stay in force");
	snapshot_release(s);
	diag_free(d);
	metrics_reload(false);
}

static void
reload(void)
{
	struct diag d = { 0 };
	struct snapshot *s = load(&d), *old;

	if (s == NULL || snapshot_start(s, &d) != 0) {
		reload_failed(s, &d);
		return;
	}
	/* the metrics labels follow the new policy before its zone prober
	 * reports the first states */
	metrics_policy(s->pol);
	if (snapshot_start_probes(s) != 0 ||
	    snapshot_start_reports(s, &d) != 0) {
		if ((old = snapshot_acquire()) != NULL) {
			metrics_policy(old->pol);
			snapshot_release(old);
		}
		reload_failed(s, &d);
		return;
	}
	log_diag(&d);
	diag_free(&d);
	if ((old = snapshot_acquire()) != NULL) {
		if (strcmp(old->cfg->socket, s->cfg->socket) != 0)
			log_warn("socket changed: takes effect at restart");
		snapshot_release(old);
	}
	metrics_follow(s->cfg->metrics);
	snapshot_publish(s);
	metrics_reload(true);
	log_info("reloaded %s and %s", s->cfg->path ? s->cfg->path :
	    "(defaults)", s->cfg->policy);
}

static int
run_daemon(bool foreground)
{
	struct diag d = { 0 };
	struct snapshot *s;
	pthread_t tid;
	sigset_t set;
	int milter_rc = 0, sig, metrics_fd = -1;
	uint64_t until;
	char *pidfile = NULL, *sockpath = NULL, err[256];

	s = load(&d);
	print_diag(&d);
	diag_free(&d);
	if (s == NULL)
		return 1;
	if (!foreground)
		daemonise();

	/* every thread created from here on inherits the mask */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	addr_init();
	tag_init();
	metrics_init();
	metrics_gauge_sources(glue_active, glue_in_flight);
	if (glue_open(s->cfg->socket) != 0) {
		glue_close();
		snapshot_release(s);
		return 1;
	}
	/* the metrics socket, like the milter's, is bound before the
	 * privileges drop; its thread starts after */
	if (s->cfg->metrics != NULL && (metrics_fd = metrics_http_bind(
	    s->cfg->metrics, err, sizeof(err))) < 0) {
		log_err("metrics: %s", err);
		glue_close();
		snapshot_release(s);
		return 1;
	}
	if (unix_socket_path(s->cfg->socket) != NULL)
		sockpath = xstrdup(unix_socket_path(s->cfg->socket));
	if (s->cfg->pidfile != NULL) {
		pidfile = xstrdup(s->cfg->pidfile);
		write_pidfile(pidfile);
	}
	drop_privileges(s->cfg);
	if (snapshot_start(s, &d) != 0) {
		log_diag(&d);
		log_fatal("cannot start");
	}
	metrics_policy(s->pol);
	if (snapshot_start_probes(s) != 0)
		log_fatal("cannot start the blocklist zone prober");
	if (snapshot_start_reports(s, &d) != 0) {
		log_diag(&d);
		log_fatal("cannot open the DMARC report store");
	}
	diag_free(&d);
	snapshot_publish(s);
	if (pthread_create(&tid, NULL, milter_thread, &milter_rc) != 0)
		log_fatal("cannot start the milter thread");
	if (metrics_fd >= 0) {
		if ((metrics_srv = metrics_http_start(metrics_fd, err,
		    sizeof(err))) == NULL)
			log_fatal("metrics: %s", err);
		metrics_addr = xstrdup(s->cfg->metrics);
		log_info("metrics on http://%s/metrics", metrics_addr);
	}
	if (!foreground) {
		daemon_ready();
		log_open("portcullis", LOG_TO_SYSLOG);
	}
	log_info("portcullis %s started on %s", PACKAGE_VERSION,
	    s->cfg->socket);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP || sig == SIGUSR1) {
			reload();
			continue;
		}
		log_info("signal %d: stopping; messages in flight finish",
		    sig);
		break;
	}
	/*
	 * Graceful stop.  libmilter's worker pool stops reading idle
	 * sessions once smfi_stop() is called, so first refuse new
	 * connections and messages, let the messages in flight finish, and
	 * only then stop libmilter.  A second SIGTERM or SIGINT stops at once.
	 */
	glue_drain();
	until = clock_ms() + DRAIN_WAIT_MS;
	while (glue_in_flight() > 0 && clock_ms() < until) {
		struct timespec ts = { 0, 50 * 1000000L };
		siginfo_t si;

		sig = sigtimedwait(&set, &si, &ts);
		if (sig == SIGHUP || sig == SIGUSR1)
			reload();
		else if (sig == SIGTERM || sig == SIGINT) {
			log_warn("second signal %d: stopping now", sig);
			break;
		}
	}
	if (glue_in_flight() > 0)
		log_warn("%d messages still in flight at exit",
		    glue_in_flight());
	glue_stop();
	pthread_join(tid, NULL);
	glue_close();
	/* the page answered until the last message was done */
	metrics_http_stop(metrics_srv);
	metrics_srv = NULL;
	free(metrics_addr);
	metrics_addr = NULL;
	snapshot_clear();
	if (sockpath != NULL)
		unlink(sockpath);
	if (pidfile != NULL)
		unlink(pidfile);
	free(sockpath);
	free(pidfile);
	log_info("stopped");
	return milter_rc == 0 ? 0 : 1;
}

static int
check_config(void)
{
	struct diag d = { 0 };
	struct snapshot *s = load(&d);
	int rc = s != NULL ? 0 : 1;

	print_diag(&d);
	diag_free(&d);
	snapshot_release(s);
	return rc;
}

int
main(int argc, char **argv)
{
	bool foreground = false, check_only = false;
	int ch;

	log_open("portcullis", LOG_TO_STDERR);
	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return check_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "greylist") == 0)
		return greylist_cli_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "test") == 0)
		return casetest_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "report") == 0)
		return report_cli_main(argc - 1, argv + 1);
	while ((ch = getopt(argc, argv, "c:p:fu:P:nVh")) != -1) {
		switch (ch) {
		case 'c':
			opt.conf = optarg;
			break;
		case 'p':
			opt.socket = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'u':
			opt.user = optarg;
			break;
		case 'P':
			opt.pidfile = optarg;
			break;
		case 'n':
			check_only = true;
			break;
		case 'V':
			printf("portcullis %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "portcullis: unexpected argument '%s'\n",
		    argv[optind]);
		usage(stderr);
		return 2;
	}
	if (opt.conf == NULL && access(config_default_path(), F_OK) == 0)
		opt.conf = config_default_path();
	if (check_only)
		return check_config();
	return run_daemon(foreground);
}
