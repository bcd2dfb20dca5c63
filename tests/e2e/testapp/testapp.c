// testapp: the tiny HTTP server in Rollgate's test application images (hack/test-app-images.sh).
// A static binary (gcc -static) with no files of its own, so an image holds only it and the users.
//
//   testapp [--mode serve|never-ready|crash] [--version V] [--port N]   (defaults: the environment)
//   testapp --mode check [--exit N] [--sleep S] [--version V]           (a smoke check's command)
//   testapp --mode sleep [--version V]                                  (a smoke check that hangs)
//   testapp --help
//
// Environment (what the images bake in; arguments win):
//   PORT             the TCP port it listens on, every address (default 8080)
//   TESTAPP_VERSION  what `GET /` answers (default "dev")
//   TESTAPP_MODE     serve        GET /healthz -> 200 "ok", GET / -> 200 "<version>"
//                    never-ready  the same, but GET /healthz -> 503 "not ready", forever
//                    crash        prints a line to stderr and exits 1 after about 1 s
//                    (default serve)
// Any other path is 404, any other method 405; every answer closes its connection. SIGTERM and
// SIGINT end it with status 0 (it is PID 1 in a container, where unhandled SIGTERM is ignored).
// One connection at a time: it is a readiness target, not a web server.
//
// The smoke-check modes (issue 20) are reached by arguments only (a check's command replaces the
// image's entrypoint), so no image is built for them:
//   check  prints "smoke: testapp <version>: checking ..." lines to stdout and stderr, sleeps S
//          seconds (--sleep, default 0), then prints "smoke: testapp <version>: PASSED" (N = 0)
//          or "smoke: testapp <version>: FAILED: ..." to stderr and exits N (--exit, default 0)
//   sleep  prints "smoke: testapp <version>: sleeping until stopped" and sleeps forever (a check
//          that times out); SIGTERM or SIGINT ends it with status 143
// A signal during check's sleep ends it with status 143 too.
#define _GNU_SOURCE  // accept4
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void usage(FILE *out) {
  fputs("usage: testapp [--mode serve|never-ready|crash] [--version V] [--port N]\n"
        "       testapp --mode check [--exit N] [--sleep S] [--version V]\n"
        "       testapp --mode sleep [--version V]\n"
        "Serves GET /healthz (200 ok; 503 in mode never-ready) and GET / (200 <version>) on\n"
        "PORT (default 8080); mode crash exits 1 after about 1 s. Environment: PORT,\n"
        "TESTAPP_VERSION, TESTAPP_MODE (arguments win).\n"
        "Smoke checks: mode check prints \"smoke: ...\" lines to stdout and stderr, sleeps S\n"
        "seconds (default 0) and exits N (default 0; N > 0 after a \"FAILED\" line on stderr);\n"
        "mode sleep sleeps until a signal (then exits 143).\n",
        out);
}

static const char *env_or(const char *name, const char *fallback) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : fallback;
}

// The whole buffer, retrying short writes; gives up on error.
static void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    buf += n;
    len -= (size_t)n;
  }
}

// HEAD (head_only) gets the head GET would get, without the body.
static void respond(int fd, int head_only, int status, const char *reason, const char *body,
                    const char *version) {
  char head[256];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                   "X-Testapp-Version: %s\r\nConnection: close\r\n\r\n",
                   status, reason, strlen(body), version);
  if (n > 0 && (size_t)n < sizeof head) {
    write_all(fd, head, (size_t)n);
    if (!head_only) write_all(fd, body, strlen(body));
  }
}

// Reads the request head (up to the blank line, a full buffer or a 5 s timeout) and answers it.
static void handle(int fd, int ready, const char *version, const char *version_body) {
  char req[4096];
  size_t len = 0;
  while (len < sizeof req - 1) {
    ssize_t n = read(fd, req + len, sizeof req - 1 - len);
    if (n < 0 && errno == EINTR && !g_stop) continue;
    if (n <= 0) break;
    len += (size_t)n;
    req[len] = '\0';
    if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL) break;
  }
  req[len] = '\0';
  char method[16], path[1024];
  if (sscanf(req, "%15s %1023s", method, path) != 2) {
    respond(fd, 0, 400, "Bad Request", "bad request\n", version);
    return;
  }
  char *query = strchr(path, '?');
  if (query != NULL) *query = '\0';
  int head_only = strcmp(method, "HEAD") == 0;
  if (strcmp(method, "GET") != 0 && !head_only) {
    respond(fd, 0, 405, "Method Not Allowed", "method not allowed\n", version);
  } else if (strcmp(path, "/healthz") == 0) {
    if (ready) {
      respond(fd, head_only, 200, "OK", "ok\n", version);
    } else {
      respond(fd, head_only, 503, "Service Unavailable", "not ready\n", version);
    }
  } else if (strcmp(path, "/") == 0) {
    respond(fd, head_only, 200, "OK", version_body, version);
  } else {
    respond(fd, head_only, 404, "Not Found", "not found\n", version);
  }
}

// A listening socket on every address: IPv6 with IPv4 mapped when the kernel has IPv6, IPv4 only
// otherwise. -1 (with a message) on failure.
static int listen_on(int port) {
  int one = 1, zero = 0;
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof a6);
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_any;
    a6.sin6_port = htons((unsigned short)port);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (struct sockaddr *)&a6, sizeof a6) == 0 && listen(fd, 64) == 0) return fd;
    if (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL) {
      fprintf(stderr, "testapp: listen on port %d: %s\n", port, strerror(errno));
      close(fd);
      return -1;
    }
    close(fd);
  }
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fprintf(stderr, "testapp: socket: %s\n", strerror(errno));
    return -1;
  }
  struct sockaddr_in a4;
  memset(&a4, 0, sizeof a4);
  a4.sin_family = AF_INET;
  a4.sin_addr.s_addr = htonl(INADDR_ANY);
  a4.sin_port = htons((unsigned short)port);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a4, sizeof a4) != 0 || listen(fd, 64) != 0) {
    fprintf(stderr, "testapp: listen on port %d: %s\n", port, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

// A whole decimal number in [lo, hi], or -1.
static long parse_number(const char *text, long lo, long hi) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno != 0 || v < lo || v > hi) return -1;
  return v;
}

// Sleeps `seconds` (forever when negative) unless SIGTERM or SIGINT comes; 0 when it slept the
// whole time, 1 when a signal cut it short.
static int sleep_unless_stopped(long seconds) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  long left = seconds;
  while (!g_stop && (seconds < 0 || left > 0)) {
    struct timespec second = {1, 0};
    nanosleep(&second, NULL);  // EINTR: the loop sees g_stop
    if (seconds > 0) left--;
  }
  return g_stop ? 1 : 0;
}

// Mode check: a smoke check that passes (exit_code 0) or fails with exit_code after sleep_s.
static int smoke_check(const char *version, long exit_code, long sleep_s) {
  printf("smoke: testapp %s: checking (pid %ld, exit %ld after %ld s)\n", version, (long)getpid(),
         exit_code, sleep_s);
  fprintf(stderr, "smoke: testapp %s: checking on stderr too\n", version);
  if (sleep_unless_stopped(sleep_s) != 0) {
    fprintf(stderr, "smoke: testapp %s: FAILED: stopped by a signal\n", version);
    return 143;
  }
  if (exit_code == 0) {
    printf("smoke: testapp %s: PASSED\n", version);
    return 0;
  }
  fprintf(stderr, "smoke: testapp %s: FAILED: exiting with status %ld as asked (--exit %ld)\n",
          version, exit_code, exit_code);
  return (int)exit_code;
}

int main(int argc, char **argv) {
  const char *mode = env_or("TESTAPP_MODE", "serve");
  const char *version = env_or("TESTAPP_VERSION", "dev");
  const char *port_text = env_or("PORT", "8080");
  const char *exit_text = "0", *sleep_text = "0";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else if (i + 1 < argc && strcmp(argv[i], "--mode") == 0) {
      mode = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--version") == 0) {
      version = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--port") == 0) {
      port_text = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--exit") == 0) {
      exit_text = argv[++i];
    } else if (i + 1 < argc && strcmp(argv[i], "--sleep") == 0) {
      sleep_text = argv[++i];
    } else {
      fprintf(stderr, "testapp: unknown argument: %s\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  long port = parse_number(port_text, 1, 65535);
  if (port < 0) {
    fprintf(stderr, "testapp: PORT is not a port number: %s\n", port_text);
    return 2;
  }
  if (strlen(version) > 64 || strpbrk(version, "\r\n") != NULL) {
    fprintf(stderr, "testapp: the version must be one line of at most 64 characters\n");
    return 2;
  }
  long exit_code = parse_number(exit_text, 0, 255), sleep_s = parse_number(sleep_text, 0, 86400);
  if (exit_code < 0 || sleep_s < 0) {
    fprintf(stderr, "testapp: --exit takes 0-255 and --sleep 0-86400 seconds\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);

  if (strcmp(mode, "check") == 0) return smoke_check(version, exit_code, sleep_s);
  if (strcmp(mode, "sleep") == 0) {
    printf("smoke: testapp %s: sleeping until stopped\n", version);
    sleep_unless_stopped(-1);
    fprintf(stderr, "smoke: testapp %s: stopped by a signal\n", version);
    return 143;
  }

  if (strcmp(mode, "crash") == 0) {
    printf("testapp %s: mode crash: exiting with status 1 in 1 s\n", version);
    struct timespec delay = {1, 0};
    while (nanosleep(&delay, &delay) != 0 && errno == EINTR) {
    }
    fprintf(stderr, "testapp %s: crashing on purpose (mode crash)\n", version);
    return 1;
  }
  int ready;
  if (strcmp(mode, "serve") == 0) {
    ready = 1;
  } else if (strcmp(mode, "never-ready") == 0) {
    ready = 0;
  } else {
    fprintf(stderr, "testapp: unknown mode %s (serve, never-ready, crash, check or sleep)\n", mode);
    return 2;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; // no SA_RESTART: accept() returns EINTR
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int lfd = listen_on((int)port);
  if (lfd < 0) return 1;
  char version_body[80];
  snprintf(version_body, sizeof version_body, "%s\n", version);
  printf("testapp %s: mode %s, listening on port %ld\n", version, mode, port);

  while (!g_stop) {
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
        if (errno == EMFILE || errno == ENFILE) usleep(100000);
        continue;
      }
      fprintf(stderr, "testapp: accept: %s\n", strerror(errno));
      return 1;
    }
    struct timeval timeout = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    handle(fd, ready, version, version_body);
    close(fd);
  }
  printf("testapp %s: stopping (signal)\n", version);
  close(lfd);
  return 0;
}
