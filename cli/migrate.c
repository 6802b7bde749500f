/* migrate.c: `nbdshadow migrate`: the operator's one command for a
 * migration.  It trains or loads the model, starts nbdkit with the shadow
 * filter over the source (every file of the volume in one directory),
 * waits until the export serves, and then either hands the VM its NBD
 * URI at once (--detach) or watches the copy until it is complete.
 *
 * nbdkit runs in a session of its own: the migration belongs to the VM,
 * not to this command, so Ctrl-C (or a lost terminal) stops the watching
 * and leaves the copy going.  Running migrate again on the same ID and
 * directory resumes from the filter's state file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "cli.h"
#include "fleet.h"
#include "metastore.h"
#include "model.h"
#include "progress.h"
#include "replace-file.h"

/* How long nbdkit may take to serve (it opens the source first). */
#define START_TIMEOUT 60.0
#define MAX_ARGS 40

struct migration {
  const char *source, *id, *listen, *model, *history;
  struct redis_options redis;
  const char *tls_psk, *tls_certificates;
  uint64_t bandwidth;
  int detach, json;
  char dir[PATH_MAX];
  /* Files of the volume, all in dir. */
  char shadow[PATH_MAX], state[PATH_MAX], stats[PATH_MAX], record[PATH_MAX],
    pidfile[PATH_MAX], log[PATH_MAX], model_file[PATH_MAX], sock[PATH_MAX];
  char host[256], port[16];     /* --listen HOST:PORT */
  char uri[PATH_MAX + 32];      /* what the VM connects to */
  char *argv[MAX_ARGS];
  int argc;
  pid_t pid;
  int resumed;
};

static volatile sig_atomic_t interrupted;

static void
usage (FILE *fp)
{
  fprintf (fp,
"usage: nbdshadow migrate --source URI --id ID --dir DIR\n"
"                         [--listen unix:PATH | --listen HOST:PORT]\n"
"                         [--model MODEL | --history TRACE.csv]\n"
"                         [--redis URL] [--redis-user U --redis-password-file F]\n"
"                         [--bandwidth RATE]\n"
"                         [--tls-psk FILE | --tls-certificates DIR]\n"
"                         [--detach] [--json]\n"
"Migrate the disk exported at URI (the source) to this host: start nbdkit\n"
"with the shadow filter, serving at --listen (default unix:DIR/ID.sock),\n"
"and wait until it serves.  ID: " MS_ID_RULE ".\n"
"The files of volume ID live in DIR (made 0700 if missing; files 0600):\n"
"ID.img (the shadow: the disk, once complete), ID.state, ID.json (stats),\n"
"ID.csv (the guest's I/O, to train the next migration), ID.model,\n"
"ID.pid, ID.log (nbdkit's messages).  An ID whose state file exists in\n"
"DIR resumes.\n"
"--history: train a model on the trace first (as nbdshadow train);\n"
"--model: use a trained one; neither: ID.model if DIR has one, else a\n"
"sequential copy.  --bandwidth: cap the background copy at RATE bytes/s\n"
"(like 20M; 0 = no cap).  --tls-psk/--tls-certificates: TLS to the\n"
"source (an nbds:// URI, or TLS required).  --redis (default: the\n"
"NBDSHADOW_REDIS environment variable; none if unset): mirror progress\n"
"to Redis and take commands from it (status, pause, resume, throttle,\n"
"finalize); the password is read from F by the filter, never passed on\n"
"a command line.\n"
"--detach: print the NBD URI for the VM and return.  Otherwise show\n"
"progress until the copy is complete: a progress bar on a terminal, one\n"
"line a second otherwise, JSON lines with --json.  Ctrl-C stops watching,\n"
"not the migration.  At the end, prints where the disk lives.\n"
"Environment: NBDSHADOW_FILTER (the filter, default \"shadow\" from\n"
"nbdkit's filter directory), NBDSHADOW_NBDKIT (default \"nbdkit\").\n");
}

static int
add_arg (struct migration *m, const char *fmt, ...)
{
  va_list ap;
  int r;

  if (m->argc + 1 >= MAX_ARGS)
    return -1;
  va_start (ap, fmt);
  r = vasprintf (&m->argv[m->argc], fmt, ap);
  va_end (ap);
  if (r == -1)
    return -1;
  m->argv[++m->argc] = NULL;
  return 0;
}

/* mkdir -p with mode 0700 for what it creates. */
static int
make_dir (const char *path)
{
  char buf[PATH_MAX];
  struct stat st;

  if (snprintf (buf, sizeof buf, "%s", path) >= (int) sizeof buf)
    return errno = ENAMETOOLONG, -1;
  for (char *p = buf + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir (buf, 0700) == -1 && errno != EEXIST)
        return -1;
      *p = c;
      if (c == '\0')
        break;
    }
  }
  if (stat (path, &st) == -1)
    return -1;
  if (!S_ISDIR (st.st_mode))
    return errno = ENOTDIR, -1;
  return 0;
}

static int
file_exists (const char *path)
{
  return access (path, F_OK) == 0;
}

/* --listen: unix:PATH or HOST:PORT ([V6ADDR]:PORT).  Sets the URI the VM
 * connects to. */
static int
parse_listen (struct migration *m)
{
  const char *l = m->listen, *colon;
  char host[256];

  if (!l) {
    if (snprintf (m->sock, sizeof m->sock, "%s/%s.sock", m->dir, m->id)
        >= (int) sizeof m->sock)
      return die ("%s/%s.sock: path too long", m->dir, m->id), -1;
    l = NULL;
  }
  else if (strncmp (l, "unix:", 5) == 0) {
    if (l[5] != '/')
      return die ("--listen %s: expected an absolute path after unix:", l), -1;
    snprintf (m->sock, sizeof m->sock, "%s", l + 5);
  }
  if (m->sock[0]) {
    if (strlen (m->sock) >= sizeof ((struct sockaddr_un *) 0)->sun_path)
      return die ("%s: too long for a unix socket path", m->sock), -1;
    snprintf (m->uri, sizeof m->uri, "nbd+unix:///?socket=%s", m->sock);
    return 0;
  }
  colon = strrchr (l, ':');
  if (!colon || colon == l || !colon[1] ||
      strspn (colon + 1, "0123456789") != strlen (colon + 1) ||
      atoi (colon + 1) < 1 || atoi (colon + 1) > 65535 ||
      (size_t) (colon - l) >= sizeof host)
    return die ("--listen: expected unix:PATH or HOST:PORT, got \"%s\"", l),
      -1;
  snprintf (m->port, sizeof m->port, "%s", colon + 1);
  snprintf (host, sizeof host, "%.*s", (int) (colon - l), l);
  if (host[0] == '[' && host[strlen (host) - 1] == ']') {
    host[strlen (host) - 1] = '\0';
    memmove (host, host + 1, strlen (host));
  }
  snprintf (m->host, sizeof m->host, "%s", host);
  if (strcmp (host, "0.0.0.0") == 0 || strcmp (host, "::") == 0) {
    /* Every address: tell the VM this host's name. */
    if (gethostname (host, sizeof host) == -1)
      snprintf (host, sizeof host, "localhost");
  }
  snprintf (m->uri, sizeof m->uri, strchr (host, ':') ? "nbd://[%s]:%s/"
            : "nbd://%s:%s/", host, m->port);
  return 0;
}

/* The pid of the nbdkit serving this volume, if one runs. */
static pid_t
running_pid (const struct migration *m)
{
  char buf[32], comm[64], path[64];
  FILE *fp = fopen (m->pidfile, "r");
  pid_t pid;
  size_t n;

  if (!fp)
    return 0;
  n = fread (buf, 1, sizeof buf - 1, fp);
  fclose (fp);
  buf[n] = '\0';
  pid = atoi (buf);
  if (pid <= 0 || kill (pid, 0) == -1)
    return 0;
  /* A recycled pid of some other program is not ours. */
  snprintf (path, sizeof path, "/proc/%d/comm", (int) pid);
  fp = fopen (path, "r");
  if (!fp)
    return pid;
  n = fread (comm, 1, sizeof comm - 1, fp);
  fclose (fp);
  comm[n] = '\0';
  return strncmp (comm, "nbdkit", 6) == 0 ? pid : 0;
}

static int
set_paths (struct migration *m)
{
  struct { char *buf; const char *suffix; } f[] = {
    { m->shadow, "img" }, { m->state, "state" }, { m->stats, "json" },
    { m->record, "csv" }, { m->pidfile, "pid" }, { m->log, "log" },
    { m->model_file, "model" },
  };

  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    if (snprintf (f[i].buf, PATH_MAX, "%s/%s.%s", m->dir, m->id, f[i].suffix)
        >= PATH_MAX)
      return die ("%s/%s: path too long", m->dir, m->id), -1;
  return 0;
}

/* The model the filter gets: trained now, given, or left from an earlier
 * run of this migration.  "" for none. */
static int
choose_model (struct migration *m, char *model, size_t len)
{
  model[0] = '\0';
  if (m->history) {
    struct train_options topts = { .block_size = 65536, .region_shift = -1 };

    fprintf (stderr, "training a model on %s\n", m->history);
    if (train_model_file (m->history, &topts, m->model_file,
                          PRIVATE_FILE_MODE, stderr, 0) == -1)
      return -1;
    snprintf (model, len, "%s", m->model_file);
  }
  else if (m->model) {
    if (!realpath (m->model, model))
      return die ("--model %s: %s", m->model, strerror (errno)), -1;
  }
  else if (file_exists (m->model_file))
    snprintf (model, len, "%s", m->model_file);
  return 0;
}

static int
build_command (struct migration *m, const char *model)
{
  const char *nbdkit = getenv ("NBDSHADOW_NBDKIT");
  const char *filter = getenv ("NBDSHADOW_FILTER");
  const char *redis = m->redis.address ? m->redis.address
                                       : getenv ("NBDSHADOW_REDIS");
  int r = 0;

  r |= add_arg (m, "%s", nbdkit && *nbdkit ? nbdkit : "nbdkit");
  r |= add_arg (m, "-f");
  if (m->sock[0]) {
    r |= add_arg (m, "-U");
    r |= add_arg (m, "%s", m->sock);
  }
  else {
    if (m->host[0]) {
      r |= add_arg (m, "-i");
      r |= add_arg (m, "%s", m->host);
    }
    r |= add_arg (m, "-p");
    r |= add_arg (m, "%s", m->port);
  }
  r |= add_arg (m, "--filter=%s", filter && *filter ? filter : "shadow");
  r |= add_arg (m, "nbd");
  r |= add_arg (m, "uri=%s", m->source);
  if (m->tls_psk || m->tls_certificates)
    r |= add_arg (m, "tls=require");
  if (m->tls_psk)
    r |= add_arg (m, "tls-psk=%s", m->tls_psk);
  if (m->tls_certificates)
    r |= add_arg (m, "tls-certificates=%s", m->tls_certificates);
  r |= add_arg (m, "shadow-file=%s", m->shadow);
  r |= add_arg (m, "shadow-state=%s", m->state);
  r |= add_arg (m, "shadow-stats=%s", m->stats);
  r |= add_arg (m, "shadow-record=%s", m->record);
  if (model[0])
    r |= add_arg (m, "shadow-model=%s", model);
  if (m->bandwidth)
    r |= add_arg (m, "shadow-bandwidth=%" PRIu64, m->bandwidth);
  if (redis && *redis) {
    r |= add_arg (m, "shadow-id=%s", m->id);
    r |= add_arg (m, "shadow-redis=%s", redis);
    /* What status shows as the volume's disk. */
    r |= add_arg (m, "shadow-export-uri=%s", m->uri);
    if (m->redis.user)
      r |= add_arg (m, "shadow-redis-user=%s", m->redis.user);
    if (m->redis.password_file)
      r |= add_arg (m, "shadow-redis-password-file=%s",
                    m->redis.password_file);
  }
  if (r)
    return die ("out of memory"), -1;
  return 0;
}

/* Write the pid file (0600, whole or not at all). */
static int
write_pidfile (const struct migration *m)
{
  struct replace_file rf;

  if (replace_file_begin (&rf, m->pidfile, PRIVATE_FILE_MODE) == -1)
    return die ("%s: %s", m->pidfile, strerror (errno)), -1;
  fprintf (rf.fp, "%d\n", (int) m->pid);
  if (replace_file_commit (&rf, 0) == -1)
    return die ("%s: %s", m->pidfile, strerror (errno)), -1;
  return 0;
}

/* Start nbdkit in a session of its own, its output in the log, and not
 * as our child: nbdkit asks for SIGTERM when its parent exits
 * (PR_SET_PDEATHSIG), and the migration must outlive this command.  So
 * an intermediate child forks it, passes its pid up a pipe and exits;
 * nbdkit is executed once it has been handed to its new parent. */
static int
spawn_nbdkit (struct migration *m)
{
  int fds[2];
  pid_t child, pid = -1;

  fflush (stdout);
  fflush (stderr);
  if (pipe2 (fds, O_CLOEXEC) == -1 || (child = fork ()) == -1)
    return die ("fork: %s", strerror (errno)), -1;
  if (child == 0) {
    int in = open ("/dev/null", O_RDONLY);
    int out = open (m->log, O_WRONLY | O_CREAT | O_APPEND, 0600);

    if (in == -1 || out == -1 || setsid () == -1 ||
        dup2 (in, 0) == -1 || dup2 (out, 1) == -1 || dup2 (out, 2) == -1)
      _exit (126);
    signal (SIGINT, SIG_DFL);
    pid_t parent = getpid ();
    pid = fork ();
    if (pid == 0) {
      /* nbdkit's death signal would be armed against its parent: start
       * it only once that parent, which exits at once, is gone. */
      while (getppid () == parent)
        usleep (1000);
      execvp (m->argv[0], m->argv);
      fprintf (stderr, "nbdshadow: %s: %s\n", m->argv[0], strerror (errno));
      _exit (127);
    }
    if (write (fds[1], &pid, sizeof pid) != sizeof pid)
      _exit (126);
    _exit (0);
  }
  close (fds[1]);
  if (read (fds[0], &pid, sizeof pid) != sizeof pid)
    pid = -1;
  close (fds[0]);
  waitpid (child, NULL, 0);
  if (pid <= 0)
    return die ("could not start %s (see %s)", m->argv[0], m->log), -1;
  m->pid = pid;
  return write_pidfile (m);
}

/* The first error nbdkit logged, for the one line migrate prints. */
static void
log_error (const struct migration *m, char *buf, size_t len)
{
  FILE *fp = fopen (m->log, "r");
  char line[1024];

  snprintf (buf, len, "see the log, %.*s", (int) (len - 16), m->log);
  if (!fp)
    return;
  while (fgets (line, sizeof line, fp))
    if (strstr (line, "error") || strstr (line, "nbdshadow:")) {
      line[strcspn (line, "\n")] = '\0';
      snprintf (buf, len, "%s", line);
      break;
    }
  fclose (fp);
}

/* 1 if nbdkit has exited (the reason in ERR).  It is not our child: a
 * zombie waiting for its new parent to reap it counts as gone. */
static int
nbdkit_exited (struct migration *m, char *err, size_t len)
{
  char path[64], stat[256];
  FILE *fp;
  int gone;

  if (m->pid <= 0)
    return 0;
  snprintf (path, sizeof path, "/proc/%d/stat", (int) m->pid);
  fp = fopen (path, "r");
  if (fp) {
    const char *state;
    size_t n = fread (stat, 1, sizeof stat - 1, fp);

    fclose (fp);
    stat[n] = '\0';
    state = strrchr (stat, ')');
    gone = state && state[1] == ' ' && (state[2] == 'Z' || state[2] == 'X');
  }
  else
    gone = kill (m->pid, 0) == -1 && errno == ESRCH;
  if (!gone)
    return 0;
  log_error (m, err, len);
  m->pid = 0;
  return 1;
}

/* Connect to the export until it answers, as the VM would. */
static int
wait_serving (struct migration *m)
{
  uint64_t start;
  char err[1024];
  char uri[sizeof m->uri + 16];

  /* nbd://0.0.0.0 is not something to connect to. */
  if (!m->sock[0] && (!m->host[0] || strcmp (m->host, "0.0.0.0") == 0))
    snprintf (uri, sizeof uri, "nbd://127.0.0.1:%s/", m->port);
  else if (!m->sock[0] && strcmp (m->host, "::") == 0)
    snprintf (uri, sizeof uri, "nbd://[::1]:%s/", m->port);
  else
    snprintf (uri, sizeof uri, "%s", m->uri);
  start = time_ns ();
  for (;;) {
    struct nbd_handle *h = nbd_create ();
    int ok = h && nbd_connect_uri (h, uri) == 0 && nbd_get_size (h) >= 0;

    if (ok)
      nbd_shutdown (h, 0);
    nbd_close (h);
    /* Serving, and its stats file is there for status to read. */
    if (ok && file_exists (m->stats))
      return 0;
    if (nbdkit_exited (m, err, sizeof err))
      return die ("nbdkit did not start: %s", err), -1;
    if (seconds_since (start) > START_TIMEOUT)
      return die ("nbdkit (pid %d) does not serve %s after %.0f s; see %s",
                  (int) m->pid, m->uri, START_TIMEOUT, m->log), -1;
    usleep (50000);
  }
}

static void
on_interrupt (int sig)
{
  interrupted = 1;
}

static void
print_serving (const struct migration *m)
{
  if (m->json)
    printf ("{\"id\": \"%s\", \"event\": \"serving\", \"uri\": \"%s\", "
            "\"pid\": %d, \"shadow_file\": \"%s\", \"stats_file\": \"%s\", "
            "\"resumed\": %s}\n", m->id, m->uri, (int) m->pid, m->shadow,
            m->stats, m->resumed ? "true" : "false");
  else if (m->detach)
    printf ("%s\n", m->uri);
  else
    fprintf (stderr, "%s %s: the VM's disk is %s (nbdkit pid %d)\n",
             m->resumed ? "resumed" : "migrating", m->id, m->uri,
             (int) m->pid);
  fflush (stdout);
}

/* Show progress until the copy is complete, nbdkit dies or Ctrl-C. */
static int
watch (struct migration *m)
{
  int tty = !m->json && isatty (STDOUT_FILENO);
  struct rate_meter meter = { 0 };
  uint64_t last = 0;
  struct progress p;
  char err[1024];

  signal (SIGINT, on_interrupt);
  signal (SIGTERM, on_interrupt);
  for (;;) {
    progress_init (&p, m->id);
    if (progress_read_stats (&p, m->stats, err, sizeof err) == 0) {
      int complete = strcmp (p.state, "complete") == 0;

      rate_meter_add (&meter, &p);
      /* The file is polled often so that the end is seen at once; lines
       * go out once a second. */
      if (tty)
        progress_print_bar (stdout, &p);
      else if (complete || !last || seconds_since (last) >= 1) {
        if (m->json)
          progress_print_json (stdout, &p);
        else
          progress_print_line (stdout, &p);
        last = time_ns ();
      }
      if (complete)
        break;
    }
    if (nbdkit_exited (m, err, sizeof err)) {
      if (tty)
        putchar ('\n');
      return die ("nbdkit exited before the copy was complete: %s", err);
    }
    usleep (250000);
    if (interrupted) {
      if (tty)
        putchar ('\n');
      fprintf (stderr, "stopped watching; the migration goes on (nbdkit "
               "pid %d).  Watch it again with: nbdshadow status --stats %s "
               "--watch\n", (int) m->pid, m->stats);
      return 0;
    }
  }
  if (tty)
    putchar ('\n');
  if (m->json)
    printf ("{\"id\": \"%s\", \"event\": \"complete\", \"shadow_file\": "
            "\"%s\", \"uri\": \"%s\", \"pid\": %d}\n", m->id, m->shadow,
            m->uri, (int) m->pid);
  else
    printf ("complete: the disk of %s now lives in %s, served at %s by "
            "nbdkit (pid %d); the source is no longer needed.  The guest's "
            "I/O is recorded in %s for the next migration.\n", m->id,
            m->shadow, m->uri, (int) m->pid, m->record);
  return 0;
}

int
cmd_migrate (int argc, char **argv)
{
  static const struct option opts[] = {
    { "source", required_argument, NULL, 's' },
    { "id", required_argument, NULL, 'i' },
    { "dir", required_argument, NULL, 'd' },
    { "listen", required_argument, NULL, 'l' },
    { "model", required_argument, NULL, 'm' },
    { "history", required_argument, NULL, 'H' },
    REDIS_OPTIONS,
    { "bandwidth", required_argument, NULL, 'b' },
    { "tls-psk", required_argument, NULL, 'k' },
    { "tls-certificates", required_argument, NULL, 'C' },
    { "detach", no_argument, NULL, 'D' },
    { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },
    { NULL }
  };
  struct migration m = { 0 };
  const char *dir = NULL;
  char model[PATH_MAX];
  pid_t running;
  int c, status = 1;

  while ((c = getopt_long (argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 's': m.source = optarg; break;
    case 'i': m.id = optarg; break;
    case 'd': dir = optarg; break;
    case 'l': m.listen = optarg; break;
    case 'm': m.model = optarg; break;
    case 'H': m.history = optarg; break;
    REDIS_OPTION_CASES (m.redis);
    case 'b':
      if (parse_size (optarg, &m.bandwidth) == -1)
        return die ("--bandwidth: expected bytes per second like 20M, "
                    "got \"%s\"", optarg);
      break;
    case 'k': m.tls_psk = optarg; break;
    case 'C': m.tls_certificates = optarg; break;
    case 'D': m.detach = 1; break;
    case 'j': m.json = 1; break;
    case 'h': usage (stdout); return 0;
    default: usage (stderr); return 1;
    }
  }
  if (optind != argc)
    return die ("migrate: unexpected argument \"%s\" (see nbdshadow "
                "migrate --help)", argv[optind]);
  if (!m.source || !m.id || !dir)
    return die ("migrate: --source, --id and --dir are required (see "
                "nbdshadow migrate --help)");
  if (!ms_valid_id (m.id))
    return die ("--id: expected " MS_ID_RULE ", got \"%s\"", m.id);
  if (strstr (m.source, "://") == NULL)
    return die ("--source: expected an NBD URI (nbd://, nbds://, "
                "nbd+unix://...), got \"%s\"", m.source);
  if (m.model && m.history)
    return die ("--model and --history exclude each other");
  if (m.tls_psk && m.tls_certificates)
    return die ("--tls-psk and --tls-certificates exclude each other");
  if ((m.redis.user || m.redis.password_file) &&
      !m.redis.address && !getenv ("NBDSHADOW_REDIS"))
    return die ("--redis-user and --redis-password-file need --redis");
  if (m.redis.password_file && access (m.redis.password_file, R_OK) == -1)
    return die ("--redis-password-file %s: %s", m.redis.password_file,
                strerror (errno));
  if (m.history && access (m.history, R_OK) == -1)
    return die ("--history %s: %s", m.history, strerror (errno));
  /* Every file of the volume is the guest's: nobody else's to read. */
  umask (077);
  if (make_dir (dir) == -1)
    return die ("--dir %s: %s", dir, strerror (errno));
  if (!realpath (dir, m.dir))
    return die ("--dir %s: %s", dir, strerror (errno));
  if (set_paths (&m) == -1 || parse_listen (&m) == -1)
    return 1;
  running = running_pid (&m);
  if (running)
    return die ("migration %s is already running (nbdkit pid %d); watch it "
                "with: nbdshadow status --stats %s", m.id, (int) running,
                m.stats);
  m.resumed = file_exists (m.state);
  if (choose_model (&m, model, sizeof model) == -1)
    return 1;
  if (m.sock[0]) {
    struct stat st;
    /* A socket left by an nbdkit that is gone (checked above). */
    if (lstat (m.sock, &st) == 0 && S_ISSOCK (st.st_mode))
      unlink (m.sock);
  }
  if (build_command (&m, model) == -1 || spawn_nbdkit (&m) == -1)
    goto out;
  if (wait_serving (&m) == -1) {
    if (m.pid > 0)
      kill (m.pid, SIGTERM);
    unlink (m.pidfile);
    goto out;
  }
  print_serving (&m);
  status = m.detach ? 0 : watch (&m);
 out:
  for (int i = 0; i < m.argc; i++)
    free (m.argv[i]);
  return status;
}
